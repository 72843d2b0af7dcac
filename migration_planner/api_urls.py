"""The REST API router; each app registers its viewsets here."""

from rest_framework.routers import DefaultRouter

from mappings.api import PlanViewSet, SystemViewSet
from runs.api import RunViewSet

router = DefaultRouter()
router.register("systems", SystemViewSet, basename="system")
router.register("plans", PlanViewSet, basename="plan")
router.register("runs", RunViewSet, basename="run")

urlpatterns = router.urls
