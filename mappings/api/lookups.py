"""Lookup tables with their entries, as JSON rows or a ``key,value`` CSV."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import parsers, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.api import UUID_PATTERN

from .. import serializers as s
from .. import services_lookups as lookups
from ..models import LookupTable
from .common import EDIT, ERROR, PLAN_FILTER, CSVParser, CSVRenderer, refuse_oversized, same_parent


@extend_schema_view(list=PLAN_FILTER)
class LookupTableViewSet(viewsets.ModelViewSet):
    serializer_class = s.LookupTableSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = (
            LookupTable.objects.select_related("plan")
            .annotate(entry_count=Count("entries"))
            .order_by("plan__name", "name")
        )
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    def _counted(self, lookup: LookupTable) -> LookupTable:
        lookup.entry_count = lookup.entries.count()
        return lookup

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        lookup = lookups.lookup_save(plan=data.pop("plan"), user=self.request.user, data=data)
        serializer.instance = self._counted(lookup)

    def perform_update(self, serializer) -> None:
        data = dict(serializer.validated_data)
        lookup = serializer.instance
        same_parent(lookup, data, "plan")
        lookup = lookups.lookup_save(
            plan=lookup.plan, user=self.request.user, data=data, lookup=lookup
        )
        serializer.instance = self._counted(lookup)

    def perform_destroy(self, instance) -> None:
        lookups.lookup_delete(lookup=instance, user=self.request.user)

    @extend_schema(methods=["GET"], responses=s.LookupEntrySerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=s.LookupEntrySerializer,
        responses={200: s.LookupEntrySerializer, 400: ERROR},
    )
    @extend_schema(
        methods=["DELETE"],
        parameters=[OpenApiParameter("key", str, required=True)],
        responses={204: None, 404: ERROR},
    )
    @action(detail=True, methods=["get", "post", "delete"], pagination_class=None)
    def entries(self, request: Request, uuid=None) -> Response:
        """GET the rows; POST ``{key, value}`` adds or changes one; DELETE ``?key=`` removes it."""
        lookup = self.get_object()
        if request.method == "GET":
            return Response(s.LookupEntrySerializer(lookup.entries.order_by("key"), many=True).data)
        if request.method == "DELETE":
            body = request.data if isinstance(request.data, dict) else {}
            key = request.query_params.get("key", body.get("key", ""))
            entry = get_object_or_404(lookup.entries, key=key)
            lookups.lookup_entry_delete(entry=entry, user=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = s.LookupEntrySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key, value = body.validated_data["key"], body.validated_data["value"]
        entry = lookups.lookup_entry_save(
            lookup=lookup,
            user=request.user,
            key=key,
            value=value,
            entry=lookup.entries.filter(key=key).first(),
        )
        return Response(s.LookupEntrySerializer(entry).data)

    @extend_schema(methods=["GET"], responses={(200, "text/csv"): OpenApiTypes.STR})
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": s.LookupCsvSerializer, "text/csv": OpenApiTypes.STR},
        responses={200: s.CountSerializer, 400: ERROR},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        renderer_classes=[renderers.JSONRenderer, CSVRenderer],
        parser_classes=[parsers.MultiPartParser, CSVParser],
    )
    def csv(self, request: Request, uuid=None) -> Response:
        """GET the table as ``key,value`` CSV; POST one to replace every row (all or nothing)."""
        lookup = self.get_object()
        if request.method == "GET":
            text = lookups.lookup_export_csv(lookup=lookup)
            return HttpResponse(text, content_type="text/csv; charset=utf-8")
        if isinstance(request.data, str):
            text = request.data
        else:
            refuse_oversized(request)
            body = s.LookupCsvSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            text = lookups.lookup_csv_decode(raw=body.validated_data["file"].read())
        count = lookups.lookup_import_csv(lookup=lookup, user=request.user, text=text)
        return Response({"rows": count})
