"""Entity mappings and their field mappings."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets

from migration_planner.lib.api import UUID_PATTERN
from migration_planner.lib.errors import ApplicationError

from .. import serializers as s
from .. import services_edit as edit
from ..models import EntityMapping, FieldMapping
from ..schema import system_table
from .common import EDIT, PLAN_FILTER, same_parent, uuid_filter


def _table(system, name: str, field: str):
    try:
        return system_table(system, name)
    except ApplicationError as exc:
        raise ApplicationError(exc.message, field=field) from exc


def _entity_keys(plan, data: dict) -> dict:
    """Default the keys from the tables' primary keys, as the workbench form does."""
    if not data.get("source_key"):
        data["source_key"] = list(
            _table(plan.source, data["source_table"], "source_table").primary_key
        )
    if not data.get("target_key"):
        target = _table(plan.target, data["target_table"], "target_table")
        data["target_key"] = (target.primary_key or ("id",))[0]
    return data


@extend_schema_view(list=PLAN_FILTER)
class EntityViewSet(viewsets.ModelViewSet):
    serializer_class = s.EntitySerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = EntityMapping.objects.select_related("plan").order_by(
            "plan__name", "load_order", "name"
        )
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        plan = data.pop("plan")
        serializer.instance = edit.entity_create(
            plan=plan, user=self.request.user, data=_entity_keys(plan, data)
        )

    def perform_update(self, serializer) -> None:
        data = dict(serializer.validated_data)
        same_parent(serializer.instance, data, "plan")
        serializer.instance = edit.entity_update(
            entity=serializer.instance, user=self.request.user, data=data
        )

    def perform_destroy(self, instance) -> None:
        edit.entity_delete(entity=instance, user=self.request.user)


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("entity", OpenApiTypes.UUID, description="An entity's uuid.")]
    )
)
class FieldMappingViewSet(viewsets.ModelViewSet):
    serializer_class = s.FieldMappingSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = (
            FieldMapping.objects.select_related("entity")
            .prefetch_related("steps")
            .order_by("entity_id", "position", "id")
        )
        entity = uuid_filter(self.request, "entity")
        return rows.filter(entity__uuid=entity) if entity else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = edit.field_create(
            entity=data.pop("entity"), user=self.request.user, data=data
        )

    def perform_update(self, serializer) -> None:
        field = serializer.instance
        data = dict(serializer.validated_data)
        same_parent(field, data, "entity")
        if data.pop("target_column", field.target_column) != field.target_column:
            raise ApplicationError(
                "The target column of a mapping cannot be changed; delete "
                "it and map the other column.",
                field="target_column",
            )
        serializer.instance = edit.field_update(field=field, user=self.request.user, data=data)

    def perform_destroy(self, instance) -> None:
        edit.field_delete(field=instance, user=self.request.user)
