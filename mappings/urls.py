from django.urls import path

from . import views

app_name = "mappings"
urlpatterns = [
    path("plans/", views.plan_list_view, name="plan_list"),
    path("plans/<slug:slug>/", views.plan_detail_view, name="plan_detail"),
    path("systems/", views.system_list_view, name="system_list"),
    path("systems/<uuid:uuid>/", views.system_detail_view, name="system_detail"),
]
