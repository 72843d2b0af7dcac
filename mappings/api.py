"""REST endpoints of the mapping workbench: systems, plans and everything beneath them.

Every write goes through the same service the HTML views call (history, audit, back-to-draft
and validation happen there); ApplicationError becomes a 400 ``{"detail", "field"}`` in
``migration_planner.lib.api``. ``write_capability`` is checked by ``RolePermission`` first;
read-only POST actions (preview, test connection, status) lower it to ``mp.view`` and leave
the decision to the service.
"""

from __future__ import annotations

import json
import uuid as uuid_lib

from django.db.models import Count, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import parsers, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.api import UUID_PATTERN
from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.uploads import upload_refusal
from runs.engine.rules import REGISTRY, RuleType

from . import serializers as s
from . import services_edit as edit
from . import services_lookups as lookups
from . import services_plans as plans
from .api_extra import PlanExtraActions, SystemExtraActions
from .api_suggestions import SuggestionApplyActions
from .models import (
    EntityMapping,
    FieldMapping,
    LookupTable,
    Milestone,
    Plan,
    PlanVersion,
    RuleStep,
    System,
)
from .preview import entity_preview
from .schema import system_schema, system_table, system_test_connection
from .selectors import plan_list
from .services import plan_version_create
from .services_systems import MANAGE, system_delete, system_save
from .services_versions import plan_version_revert, snapshot_diff
from .yaml_io import plan_export_yaml, plan_import_yaml

VIEW = "mp.view"
EDIT = edit.EDIT
ERROR = OpenApiResponse(description='Refused: {"detail": "...", "field": "..."}')


# --------------------------------------------------------------------------- text bodies


class _TextRenderer(renderers.BaseRenderer):
    """Renders a text body as is; error dicts are rendered as JSON text."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        return text.encode(self.charset)


class YAMLRenderer(_TextRenderer):
    media_type, format = "text/yaml", "yaml"


class CSVRenderer(_TextRenderer):
    media_type, format = "text/csv", "csv"


class _TextParser(parsers.BaseParser):
    """A raw UTF-8 text body (a BOM is dropped) as ``request.data``."""

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        try:
            return stream.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApplicationError(f"The body is not UTF-8 text (byte {exc.start}).",
                                   field="body") from exc


class YAMLParser(_TextParser):
    media_type = "text/yaml"


class AppYAMLParser(_TextParser):
    media_type = "application/yaml"


class CSVParser(_TextParser):
    media_type = "text/csv"


def _refuse_oversized(request: Request) -> None:
    refusal = upload_refusal(request)
    if refusal:
        raise ApplicationError(refusal, field="file")


def _upload_text(upload) -> str:
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(f"{upload.name}: not UTF-8 text (byte {exc.start}).",
                               field="file") from exc


def _uuid_filter(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return str(uuid_lib.UUID(value))
    except ValueError:
        raise ApplicationError(f"“{value}” is not a UUID.", field=name) from None


def _same_parent(instance, data: dict, name: str) -> None:
    """Rows never move to another parent through an update."""
    parent = data.pop(name, None)
    if parent is not None and parent.pk != getattr(instance, f"{name}_id"):
        raise ApplicationError(f"The {name} of an existing row cannot be changed.", field=name)


def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- systems


class SystemViewSet(SystemExtraActions, viewsets.ModelViewSet):
    serializer_class = s.SystemSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = MANAGE
    queryset = System.objects.order_by("name")

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        secret = data.pop("secret", "")
        serializer.instance = system_save(user=self.request.user, data=data, secret=secret)

    def perform_update(self, serializer) -> None:
        data = dict(serializer.validated_data)
        secret = data.pop("secret", "")
        serializer.instance = system_save(user=self.request.user, data=data, secret=secret,
                                          system=serializer.instance)

    def perform_destroy(self, instance) -> None:
        system_delete(system=instance, user=self.request.user)

    @extend_schema(request=None, responses=s.ConnectionReportSerializer)
    @action(detail=True, methods=["post"], url_path="test-connection", write_capability=MANAGE)
    def test_connection(self, request: Request, uuid=None) -> Response:
        """Connect, read the server version and the tables' row estimates (never a 500)."""
        report = system_test_connection(self.get_object())
        tables = [{"name": name, "row_estimate": rows} for name, rows in report.tables]
        return Response(s.ConnectionReportSerializer(
            {"ok": report.ok, "message": report.message, "tables": tables}).data)

    @extend_schema(request={"multipart/form-data": s.FileUploadRequestSerializer},
                   responses={202: s.FileUploadSerializer, 400: ERROR, 413: ERROR})
    @action(detail=True, methods=["post"], url_path="upload", write_capability=MANAGE,
            parser_classes=[parsers.MultiPartParser])
    def upload(self, request: Request, uuid=None) -> Response:
        """Keep the file (streamed, at most MP_UPLOAD_MAX_MB: else 413) and queue its staging
        on a worker: 202 with the upload, whose progress GET /api/file-uploads/{uuid}/ shows."""
        from .api_uploads import upload_accept

        return upload_accept(request, self.get_object())

    @extend_schema(parameters=[OpenApiParameter("refresh", bool, description="Bypass the "
                                                "30 s schema cache.")],
                   responses={200: s.TableSerializer(many=True), 400: ERROR})
    @action(detail=True, methods=["get"], url_path="schema", pagination_class=None)
    def table_schema(self, request: Request, uuid=None) -> Response:
        """Tables with columns, types, lengths, nullability, keys and row estimates."""
        schema = system_schema(self.get_object(), fresh=_flag(request.query_params.get(
            "refresh", "")))
        tables = sorted(schema.tables.values(), key=lambda t: t.name)
        return Response(s.TableSerializer(tables, many=True).data)


# --------------------------------------------------------------------------- plans


def _rule_type_data(rule: RuleType) -> dict:
    params = [{"name": p.name, "type": p.type, "required": p.required,
               "default": list(p.default) if isinstance(p.default, list | tuple) else p.default,
               "choices": list(p.choices), "help": p.help, "min_value": p.min_value,
               "max_value": p.max_value} for p in rule.params]
    return {"name": rule.name, "label": rule.label, "description": rule.description,
            "null_handling": rule.null_handling, "accepts_frame": rule.accepts_frame,
            "category": rule.category, "params": params}


NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="Version number.")
ENTITY_NAME = OpenApiParameter("entity_name", str, OpenApiParameter.PATH,
                               description="The entity's name within the plan.")


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter(
    "archived", bool, description="true: archived plans only; false: active plans only.")]))
class PlanViewSet(PlanExtraActions, SuggestionApplyActions, viewsets.ModelViewSet):
    """Plans; DELETE is refused (400) while runs exist: archive instead."""

    serializer_class = s.PlanSerializer
    lookup_field = "slug"
    write_capability = EDIT
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet:
        archived = self.request.query_params.get("archived") if self.action == "list" else None
        return plan_list(archived=None if archived is None else _flag(archived))

    def perform_destroy(self, instance: Plan) -> None:
        plans.plan_delete(plan=instance, user=self.request.user)

    @extend_schema(request=s.PlanCloneSerializer, responses={201: s.PlanSerializer, 400: ERROR})
    @action(detail=True, methods=["post"])
    def clone(self, request: Request, slug=None) -> Response:
        """A new draft plan with everything this plan says, under a new (unique) name."""
        body = s.PlanCloneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        copy = plans.plan_clone(plan=self.get_object(), user=request.user,
                                name=body.validated_data["name"])
        return Response(s.PlanSerializer(copy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.PlanArchiveSerializer, responses={200: s.PlanSerializer})
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, slug=None) -> Response:
        """Archive (or with archived=false restore) the plan: no new runs, all stays readable."""
        body = s.PlanArchiveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = plans.plan_archive(plan=self.get_object(), user=request.user,
                                  archived=body.validated_data["archived"])
        return Response(s.PlanSerializer(plan).data)

    def perform_create(self, serializer) -> None:
        serializer.instance = edit.plan_create(user=self.request.user,
                                               data=dict(serializer.validated_data))

    def perform_update(self, serializer) -> None:
        serializer.instance = edit.plan_update(plan=serializer.instance, user=self.request.user,
                                               data=dict(serializer.validated_data))

    @extend_schema(request=s.PlanStatusSerializer, responses={200: s.PlanSerializer, 400: ERROR})
    @action(detail=True, methods=["post"], url_path="status", write_capability=EDIT)
    def set_status(self, request: Request, slug=None) -> Response:
        """Draft → in review → signed off; the service checks edit / sign-off rights."""
        body = s.PlanStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = edit.plan_status_set(plan=self.get_object(), user=request.user,
                                    status=body.validated_data["status"])
        return Response(s.PlanSerializer(plan).data)

    @extend_schema(methods=["GET"], responses=s.VersionSerializer(many=True))
    @extend_schema(methods=["POST"], request=s.VersionCreateSerializer,
                   responses={201: s.VersionSerializer, 200: s.VersionSerializer, 400: ERROR})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def versions(self, request: Request, slug=None) -> Response:
        """Versions newest first; POST freezes a new one (200 when nothing changed since)."""
        plan = self.get_object()
        if request.method == "GET":
            rows = plan.versions.select_related("created_by").order_by("-number")
            return Response(s.VersionSerializer(rows, many=True).data)
        body = s.VersionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        latest = plan.versions.order_by("-number").values_list("number", flat=True).first()
        version = plan_version_create(plan=plan, user=request.user,
                                      note=body.validated_data["note"])
        code = status.HTTP_200_OK if version.number == latest else status.HTTP_201_CREATED
        return Response(s.VersionSerializer(version).data, status=code)

    @extend_schema(parameters=[OpenApiParameter("a", int, required=True),
                               OpenApiParameter("b", int, required=True)],
                   responses=s.DiffSerializer)
    @action(detail=True, methods=["get"], url_path="versions/diff")
    def version_diff(self, request: Request, slug=None) -> Response:
        """What changed from version ``a`` to version ``b``."""
        plan = self.get_object()
        given = {name: request.query_params.get(name, "") for name in ("a", "b")}
        for name, value in given.items():
            if not value.isdigit():
                raise ApplicationError(f"Give version number “{name}”.", field=name)
        numbers = {name: get_object_or_404(PlanVersion, plan=plan, number=int(value))
                   for name, value in given.items()}
        changes = snapshot_diff(numbers["a"].snapshot, numbers["b"].snapshot)
        return Response(s.DiffSerializer({"a": numbers["a"].number, "b": numbers["b"].number,
                                          "changes": changes}).data)

    @extend_schema(parameters=[NUMBER], request=None,
                   responses={200: s.PlanSerializer, 400: ERROR})
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/revert")
    def version_revert(self, request: Request, slug=None, number=None) -> Response:
        """Rewrite the plan's mappings and lookups from a version (the plan returns to draft)."""
        plan = self.get_object()
        version = get_object_or_404(PlanVersion, plan=plan, number=int(number))
        plan = plan_version_revert(plan=plan, version=version, user=request.user)
        return Response(s.PlanSerializer(plan).data)

    @extend_schema(parameters=[ENTITY_NAME], request=s.PreviewRequestSerializer,
                   responses=s.PreviewSerializer)
    @action(detail=True, methods=["post"], write_capability=VIEW,
            url_path=r"entities/(?P<entity_name>[-a-zA-Z0-9_]+)/preview")
    def preview(self, request: Request, slug=None, entity_name=None) -> Response:
        """The entity's current mapping applied to sample rows; errors per cell."""
        body = s.PreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entity = get_object_or_404(EntityMapping.objects.select_related(
            "plan__source", "plan__target"), plan=self.get_object(), name=entity_name)
        result = entity_preview(entity=entity, limit=body.validated_data["rows"],
                                order=body.validated_data["sample"])
        return Response(s.PreviewSerializer(result).data)

    @extend_schema(responses={(200, "text/yaml"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer,
                                                            YAMLRenderer])
    def yaml(self, request: Request, slug=None) -> Response:
        """The plan as v1 YAML (no secrets, no connection details)."""
        text = plan_export_yaml(plan=self.get_object())
        return HttpResponse(text, content_type="text/yaml; charset=utf-8")

    @extend_schema(
        request={"application/json": s.PlanImportSerializer,
                 "multipart/form-data": s.PlanImportSerializer,
                 "text/yaml": OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("replace", bool, description="With a text/yaml body: "
                                     "overwrite the plan with the same slug."),
                    OpenApiParameter("allow_unknown_schema", bool, description="With a "
                                     "text/yaml body: import although tables / columns are "
                                     "missing from the schemas.")],
        responses={201: s.PlanSerializer, 400: ERROR})
    @action(detail=False, methods=["post"], url_path="import",
            parser_classes=[parsers.JSONParser, parsers.MultiPartParser, YAMLParser,
                            AppYAMLParser])
    def import_yaml(self, request: Request) -> Response:
        """Create (or with ``replace`` overwrite) a plan from v1 YAML; errors give line/column."""
        if isinstance(request.data, str):
            text, replace = request.data, _flag(request.query_params.get("replace", ""))
            allow = _flag(request.query_params.get("allow_unknown_schema", ""))
        else:
            _refuse_oversized(request)
            body = s.PlanImportSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            upload = body.validated_data.get("file")
            text = _upload_text(upload) if upload else body.validated_data.get("yaml")
            replace = body.validated_data["replace"]
            allow = body.validated_data["allow_unknown_schema"]
            if not text:
                raise ApplicationError("Send the YAML as “yaml” text or a “file”.", field="yaml")
        plan = plan_import_yaml(text=text, user=request.user, replace=replace,
                                allow_unknown_schema=allow)
        return Response(s.PlanSerializer(plan).data, status=status.HTTP_201_CREATED)


PLAN_FILTER = extend_schema(parameters=[OpenApiParameter("plan", str,
                                                         description="A plan's slug.")])


@extend_schema_view(list=PLAN_FILTER)
class MilestoneViewSet(viewsets.ModelViewSet):
    serializer_class = s.MilestoneSerializer
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = Milestone.objects.select_related("plan").order_by("plan__name", "position",
                                                                  "start", "id")
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = edit.milestone_save(plan=data.pop("plan"), user=self.request.user,
                                                  data=data)

    def perform_update(self, serializer) -> None:
        milestone = serializer.instance
        data = dict(serializer.validated_data)
        _same_parent(milestone, data, "plan")
        data = {k: data.get(k, getattr(milestone, k))
                for k in ("phase", "start", "end", "deliverable")}
        serializer.instance = edit.milestone_save(plan=milestone.plan, user=self.request.user,
                                                  data=data, milestone=milestone)

    def perform_destroy(self, instance) -> None:
        edit.milestone_delete(milestone=instance, user=self.request.user)


# --------------------------------------------------------------------------- mappings


def _table(system, name: str, field: str):
    try:
        return system_table(system, name)
    except ApplicationError as exc:
        raise ApplicationError(exc.message, field=field) from exc


def _entity_keys(plan, data: dict) -> dict:
    """Default the keys from the tables' primary keys, as the workbench form does."""
    if not data.get("source_key"):
        data["source_key"] = list(_table(plan.source, data["source_table"],
                                         "source_table").primary_key)
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
        rows = EntityMapping.objects.select_related("plan").order_by("plan__name", "load_order",
                                                                     "name")
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        plan = data.pop("plan")
        serializer.instance = edit.entity_create(plan=plan, user=self.request.user,
                                                 data=_entity_keys(plan, data))

    def perform_update(self, serializer) -> None:
        data = dict(serializer.validated_data)
        _same_parent(serializer.instance, data, "plan")
        serializer.instance = edit.entity_update(entity=serializer.instance,
                                                 user=self.request.user, data=data)

    def perform_destroy(self, instance) -> None:
        edit.entity_delete(entity=instance, user=self.request.user)


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("entity", OpenApiTypes.UUID, description="An entity's uuid.")]))
class FieldMappingViewSet(viewsets.ModelViewSet):
    serializer_class = s.FieldMappingSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = (FieldMapping.objects.select_related("entity").prefetch_related("steps")
                .order_by("entity_id", "position", "id"))
        entity = _uuid_filter(self.request, "entity")
        return rows.filter(entity__uuid=entity) if entity else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = edit.field_create(entity=data.pop("entity"),
                                                user=self.request.user, data=data)

    def perform_update(self, serializer) -> None:
        field = serializer.instance
        data = dict(serializer.validated_data)
        _same_parent(field, data, "entity")
        if data.pop("target_column", field.target_column) != field.target_column:
            raise ApplicationError("The target column of a mapping cannot be changed; delete "
                                   "it and map the other column.", field="target_column")
        serializer.instance = edit.field_update(field=field, user=self.request.user, data=data)

    def perform_destroy(self, instance) -> None:
        edit.field_delete(field=instance, user=self.request.user)


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("field", OpenApiTypes.UUID, description="A field mapping's uuid.")]))
class RuleStepViewSet(viewsets.ModelViewSet):
    serializer_class = s.RuleStepSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = RuleStep.objects.select_related("field").order_by("field_id", "position", "id")
        field = _uuid_filter(self.request, "field")
        return rows.filter(field__uuid=field) if field else rows

    def perform_create(self, serializer) -> None:
        data = serializer.validated_data
        serializer.instance = edit.step_add(field=data["field"], user=self.request.user,
                                            rule=data["rule"], params=data.get("params"))

    def perform_update(self, serializer) -> None:
        step = serializer.instance
        data = dict(serializer.validated_data)
        _same_parent(step, data, "field")
        if data.get("rule", step.rule) != step.rule:
            raise ApplicationError("The rule of a step cannot be changed; add a new step.",
                                   field="rule")
        serializer.instance = edit.step_update(step=step, user=self.request.user,
                                               params=data.get("params", step.params))

    def perform_destroy(self, instance) -> None:
        edit.step_delete(step=instance, user=self.request.user)

    @extend_schema(request=s.StepMoveSerializer, responses={200: s.RuleStepSerializer,
                                                            400: ERROR})
    @action(detail=True, methods=["post"])
    def move(self, request: Request, uuid=None) -> Response:
        """Move the step one place up or down its chain."""
        body = s.StepMoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        step = edit.step_move(step=self.get_object(), user=request.user,
                              direction=body.validated_data["direction"])
        step.refresh_from_db()
        return Response(s.RuleStepSerializer(step).data)


@extend_schema_view(list=extend_schema(responses=s.RuleTypeSerializer(many=True)),
                    retrieve=extend_schema(responses=s.RuleTypeSerializer))
class RuleTypeViewSet(viewsets.ViewSet):
    """The transformation rule registry (read-only): what API clients build step forms from."""

    lookup_field = "name"
    lookup_value_regex = "[a-z_]+"
    serializer_class = s.RuleTypeSerializer

    def list(self, request: Request) -> Response:
        return Response([_rule_type_data(rule) for rule in REGISTRY.values()])

    def retrieve(self, request: Request, name=None) -> Response:
        if name not in REGISTRY:
            return Response({"detail": f"Unknown rule type “{name}”.", "field": "name"},
                            status=status.HTTP_404_NOT_FOUND)
        return Response(_rule_type_data(REGISTRY[name]))


# --------------------------------------------------------------------------- lookups


@extend_schema_view(list=PLAN_FILTER)
class LookupTableViewSet(viewsets.ModelViewSet):
    serializer_class = s.LookupTableSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = (LookupTable.objects.select_related("plan")
                .annotate(entry_count=Count("entries")).order_by("plan__name", "name"))
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
        _same_parent(lookup, data, "plan")
        lookup = lookups.lookup_save(plan=lookup.plan, user=self.request.user, data=data,
                                     lookup=lookup)
        serializer.instance = self._counted(lookup)

    def perform_destroy(self, instance) -> None:
        lookups.lookup_delete(lookup=instance, user=self.request.user)

    @extend_schema(methods=["GET"], responses=s.LookupEntrySerializer(many=True))
    @extend_schema(methods=["POST"], request=s.LookupEntrySerializer,
                   responses={200: s.LookupEntrySerializer, 400: ERROR})
    @extend_schema(methods=["DELETE"], parameters=[OpenApiParameter("key", str, required=True)],
                   responses={204: None, 404: ERROR})
    @action(detail=True, methods=["get", "post", "delete"], pagination_class=None)
    def entries(self, request: Request, uuid=None) -> Response:
        """GET the rows; POST ``{key, value}`` adds or changes one; DELETE ``?key=`` removes it."""
        lookup = self.get_object()
        if request.method == "GET":
            return Response(s.LookupEntrySerializer(lookup.entries.order_by("key"),
                                                    many=True).data)
        if request.method == "DELETE":
            body = request.data if isinstance(request.data, dict) else {}
            key = request.query_params.get("key", body.get("key", ""))
            entry = get_object_or_404(lookup.entries, key=key)
            lookups.lookup_entry_delete(entry=entry, user=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = s.LookupEntrySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key, value = body.validated_data["key"], body.validated_data["value"]
        entry = lookups.lookup_entry_save(lookup=lookup, user=request.user, key=key, value=value,
                                          entry=lookup.entries.filter(key=key).first())
        return Response(s.LookupEntrySerializer(entry).data)

    @extend_schema(methods=["GET"], responses={(200, "text/csv"): OpenApiTypes.STR})
    @extend_schema(methods=["POST"], request={"multipart/form-data": s.LookupCsvSerializer,
                                              "text/csv": OpenApiTypes.STR},
                   responses={200: s.CountSerializer, 400: ERROR})
    @action(detail=True, methods=["get", "post"],
            renderer_classes=[renderers.JSONRenderer, CSVRenderer],
            parser_classes=[parsers.MultiPartParser, CSVParser])
    def csv(self, request: Request, uuid=None) -> Response:
        """GET the table as ``key,value`` CSV; POST one to replace every row (all or nothing)."""
        lookup = self.get_object()
        if request.method == "GET":
            text = lookups.lookup_export_csv(lookup=lookup)
            return HttpResponse(text, content_type="text/csv; charset=utf-8")
        if isinstance(request.data, str):
            text = request.data
        else:
            _refuse_oversized(request)
            body = s.LookupCsvSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            text = lookups.lookup_csv_decode(raw=body.validated_data["file"].read())
        count = lookups.lookup_import_csv(lookup=lookup, user=request.user, text=text)
        return Response({"rows": count})
