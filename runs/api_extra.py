"""API for what the runs pages offer beyond runs and the queue: comparing two runs and the
user's run notifications (same selectors and services as the pages)."""

from __future__ import annotations

import uuid as uuid_lib

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.errors import ApplicationError

from .models import Notification, Run
from .notifications import notifications_mark_read
from .selectors import failed_record_top_errors, run_compare

ERROR = OpenApiResponse(description='Refused: {"detail": "...", "field": "..."}')


class CounterRowSerializer(serializers.Serializer):
    name = serializers.CharField()
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    delta = serializers.IntegerField(help_text="b − a")


class CategoryRowSerializer(serializers.Serializer):
    category = serializers.CharField()
    a = serializers.IntegerField()
    b = serializers.IntegerField()


class RunCompareSerializer(serializers.Serializer):
    a = serializers.UUIDField()
    b = serializers.UUIDField()
    counters = CounterRowSerializer(many=True)
    durations = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text="{a, b}: wall time of each run, as text.",
    )
    categories = CategoryRowSerializer(many=True, help_text="Failed records per category.")


def _run_param(request: Request, name: str) -> Run:
    value = request.query_params.get(name, "")
    try:
        uuid = uuid_lib.UUID(value)
    except ValueError:
        raise ApplicationError(f"Give run “{name}” as a UUID.", field=name) from None
    return get_object_or_404(Run, uuid=uuid)


class RunCompareAction:
    """Mixed into RunViewSet: two runs side by side, as the comparison page."""

    @extend_schema(
        parameters=[
            OpenApiParameter("a", OpenApiTypes.UUID, required=True),
            OpenApiParameter("b", OpenApiTypes.UUID, required=True),
        ],
        responses={200: RunCompareSerializer, 400: ERROR},
    )
    @action(detail=False, methods=["get"])
    def compare(self, request: Request) -> Response:
        """Counters, durations and failures by category of runs ``a`` and ``b``."""
        a, b = _run_param(request, "a"), _run_param(request, "b")
        data = run_compare(a, b)
        return Response(
            RunCompareSerializer(
                {
                    "a": a.uuid,
                    "b": b.uuid,
                    "counters": [
                        {"name": n, "a": x, "b": y, "delta": d} for n, x, y, d in data["counters"]
                    ],
                    "durations": {"a": data["durations"][0], "b": data["durations"][1]},
                    "categories": [
                        {"category": c, "a": x, "b": y} for c, x, y in data["categories"]
                    ],
                }
            ).data
        )


class TopErrorSerializer(serializers.Serializer):
    entity = serializers.CharField()
    field = serializers.CharField(allow_blank=True)
    category = serializers.CharField()
    pattern = serializers.CharField(help_text="The message with quoted values as '…'.")
    n = serializers.IntegerField(help_text="Records in the group.")


class TopErrorsAction:
    """Mixed into FailedRecordViewSet: the queue page's top-errors panel."""

    @extend_schema(responses=TopErrorSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None)
    def top(self, request: Request) -> Response:
        """The most frequent (entity, field, message pattern) groups of the matching records
        (same filters as the list), largest first."""
        rows = failed_record_top_errors(self.get_queryset())
        return Response(TopErrorSerializer(rows, many=True).data)


class NotificationSerializer(serializers.ModelSerializer):
    run = serializers.UUIDField(source="run.uuid", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = ["id", "run", "level", "message", "read_at", "created_at"]


class NotificationReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Only these notifications; default: all unread.",
    )


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField()


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The calling user's run notifications, newest first; mark them read."""

    serializer_class = NotificationSerializer
    write_capability = "mp.view"  # everybody reads their own alerts

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Notification.objects.none()
        return Notification.objects.filter(user=self.request.user).select_related("run")

    @extend_schema(request=NotificationReadSerializer, responses=MarkedSerializer)
    @action(detail=False, methods=["post"])
    def read(self, request: Request) -> Response:
        """Mark the user's notifications (all, or ``ids``) read; returns how many changed."""
        body = NotificationReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        count = notifications_mark_read(user=request.user, ids=body.validated_data.get("ids"))
        return Response({"marked": count})
