"""REST endpoints for runs."""

from __future__ import annotations

from rest_framework import viewsets

from .selectors import run_list
from .serializers import RunSerializer


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RunSerializer
    lookup_field = "uuid"

    def get_queryset(self):
        return run_list(
            plan_slug=self.request.query_params.get("plan"),
            status=self.request.query_params.get("status"),
        )
