"""REST endpoints for systems and plans."""

from __future__ import annotations

from rest_framework import viewsets

from .models import System
from .selectors import plan_list
from .serializers import PlanSerializer, SystemSerializer


class SystemViewSet(viewsets.ModelViewSet):
    serializer_class = SystemSerializer
    lookup_field = "uuid"
    write_capability = "mp.manage_systems"
    queryset = System.objects.order_by("name")

    def perform_create(self, serializer) -> None:
        serializer.save(created_by=self.request.user)


class PlanViewSet(viewsets.ModelViewSet):
    serializer_class = PlanSerializer
    lookup_field = "slug"
    write_capability = "mp.edit_plan"

    def get_queryset(self):
        return plan_list()

    def perform_create(self, serializer) -> None:
        serializer.save(owner=self.request.user)
