"""Top-level URLs: pages per app, the API under /api/, health and auth."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import schema  # noqa: F401 - registers the token scheme with drf-spectacular
from accounts.api import ObtainTokenView
from mappings import urls as mappings_urls

from . import plan_pages, views

# The ``mappings:`` namespace: the app's own pages plus the plan pages composed above the apps
# (they show runs and sign-offs too, which mappings may not import).
mappings_patterns = [
    *mappings_urls.urlpatterns,  # first: "plans/new/" must not be taken for a plan's slug
    path("plans/<slug:slug>/", plan_pages.plan_detail_view, name="plan_detail"),
    path("plans/<slug:slug>/document/", plan_pages.plan_document_view, name="plan_document"),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include((mappings_patterns, mappings_urls.app_name))),
    path("", include("runs.urls")),
    path("", include("validation.urls")),
    path("", include("accounts.urls")),
    path("api/", include("migration_planner.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/auth/token/", ObtainTokenView.as_view(), name="api-token"),
]

handler404 = "migration_planner.views.not_found"
