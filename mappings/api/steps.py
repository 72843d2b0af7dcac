"""Rule steps of a field's chain and the (read-only) rule-type registry."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.api import UUID_PATTERN
from migration_planner.lib.errors import ApplicationError
from runs.engine.rules import REGISTRY, RuleType

from .. import serializers as s
from .. import services_edit as edit
from ..models import RuleStep
from .common import EDIT, ERROR, same_parent, uuid_filter


def _rule_type_data(rule: RuleType) -> dict:
    params = [
        {
            "name": p.name,
            "type": p.type,
            "required": p.required,
            "default": list(p.default) if isinstance(p.default, list | tuple) else p.default,
            "choices": list(p.choices),
            "help": p.help,
            "min_value": p.min_value,
            "max_value": p.max_value,
        }
        for p in rule.params
    ]
    return {
        "name": rule.name,
        "label": rule.label,
        "description": rule.description,
        "null_handling": rule.null_handling,
        "accepts_frame": rule.accepts_frame,
        "category": rule.category,
        "params": params,
    }


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("field", OpenApiTypes.UUID, description="A field mapping's uuid.")
        ]
    )
)
class RuleStepViewSet(viewsets.ModelViewSet):
    serializer_class = s.RuleStepSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = RuleStep.objects.select_related("field").order_by("field_id", "position", "id")
        field = uuid_filter(self.request, "field")
        return rows.filter(field__uuid=field) if field else rows

    def perform_create(self, serializer) -> None:
        data = serializer.validated_data
        serializer.instance = edit.step_add(
            field=data["field"],
            user=self.request.user,
            rule=data["rule"],
            params=data.get("params"),
        )

    def perform_update(self, serializer) -> None:
        step = serializer.instance
        data = dict(serializer.validated_data)
        same_parent(step, data, "field")
        if data.get("rule", step.rule) != step.rule:
            raise ApplicationError(
                "The rule of a step cannot be changed; add a new step.", field="rule"
            )
        serializer.instance = edit.step_update(
            step=step, user=self.request.user, params=data.get("params", step.params)
        )

    def perform_destroy(self, instance) -> None:
        edit.step_delete(step=instance, user=self.request.user)

    @extend_schema(request=s.StepMoveSerializer, responses={200: s.RuleStepSerializer, 400: ERROR})
    @action(detail=True, methods=["post"])
    def move(self, request: Request, uuid=None) -> Response:
        """Move the step one place up or down its chain."""
        body = s.StepMoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        step = edit.step_move(
            step=self.get_object(), user=request.user, direction=body.validated_data["direction"]
        )
        step.refresh_from_db()
        return Response(s.RuleStepSerializer(step).data)


@extend_schema_view(
    list=extend_schema(responses=s.RuleTypeSerializer(many=True)),
    retrieve=extend_schema(responses=s.RuleTypeSerializer),
)
class RuleTypeViewSet(viewsets.ViewSet):
    """The transformation rule registry (read-only): what API clients build step forms from."""

    lookup_field = "name"
    lookup_value_regex = "[a-z_]+"
    serializer_class = s.RuleTypeSerializer

    def list(self, request: Request) -> Response:
        return Response([_rule_type_data(rule) for rule in REGISTRY.values()])

    def retrieve(self, request: Request, name=None) -> Response:
        if name not in REGISTRY:
            return Response(
                {"detail": f"Unknown rule type “{name}”.", "field": "name"},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(_rule_type_data(REGISTRY[name]))
