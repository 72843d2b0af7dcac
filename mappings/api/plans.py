"""Plans (clone, archive, status, versions, preview, YAML export/import) and milestones."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import parsers, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.errors import ApplicationError

from .. import serializers as s
from .. import services_edit as edit
from .. import services_plans as plans
from ..api_extra import PlanExtraActions
from ..api_suggestions import SuggestionApplyActions
from ..models import EntityMapping, Milestone, Plan, PlanVersion
from ..preview import entity_preview
from ..selectors import plan_list
from ..services import plan_version_create
from ..services_versions import plan_version_revert, snapshot_diff
from ..yaml_io import plan_export_yaml, plan_import_yaml
from .common import (
    EDIT,
    ERROR,
    PLAN_FILTER,
    VIEW,
    AppYAMLParser,
    YAMLParser,
    YAMLRenderer,
    flag,
    refuse_oversized,
    same_parent,
    upload_text,
)

NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="Version number.")
ENTITY_NAME = OpenApiParameter(
    "entity_name", str, OpenApiParameter.PATH, description="The entity's name within the plan."
)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "archived", bool, description="true: archived plans only; false: active plans only."
            )
        ]
    )
)
class PlanViewSet(PlanExtraActions, SuggestionApplyActions, viewsets.ModelViewSet):
    """Plans; DELETE is refused (400) while runs exist: archive instead."""

    serializer_class = s.PlanSerializer
    lookup_field = "slug"
    write_capability = EDIT
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet:
        archived = self.request.query_params.get("archived") if self.action == "list" else None
        return plan_list(archived=None if archived is None else flag(archived))

    def perform_destroy(self, instance: Plan) -> None:
        plans.plan_delete(plan=instance, user=self.request.user)

    @extend_schema(request=s.PlanCloneSerializer, responses={201: s.PlanSerializer, 400: ERROR})
    @action(detail=True, methods=["post"])
    def clone(self, request: Request, slug=None) -> Response:
        """A new draft plan with everything this plan says, under a new (unique) name."""
        body = s.PlanCloneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        copy = plans.plan_clone(
            plan=self.get_object(), user=request.user, name=body.validated_data["name"]
        )
        return Response(s.PlanSerializer(copy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.PlanArchiveSerializer, responses={200: s.PlanSerializer})
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, slug=None) -> Response:
        """Archive (or with archived=false restore) the plan: no new runs, all stays readable."""
        body = s.PlanArchiveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = plans.plan_archive(
            plan=self.get_object(), user=request.user, archived=body.validated_data["archived"]
        )
        return Response(s.PlanSerializer(plan).data)

    def perform_create(self, serializer) -> None:
        serializer.instance = edit.plan_create(
            user=self.request.user, data=dict(serializer.validated_data)
        )

    def perform_update(self, serializer) -> None:
        serializer.instance = edit.plan_update(
            plan=serializer.instance, user=self.request.user, data=dict(serializer.validated_data)
        )

    @extend_schema(request=s.PlanStatusSerializer, responses={200: s.PlanSerializer, 400: ERROR})
    @action(detail=True, methods=["post"], url_path="status", write_capability=EDIT)
    def set_status(self, request: Request, slug=None) -> Response:
        """Draft → in review → signed off; the service checks edit / sign-off rights."""
        body = s.PlanStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = edit.plan_status_set(
            plan=self.get_object(), user=request.user, status=body.validated_data["status"]
        )
        return Response(s.PlanSerializer(plan).data)

    @extend_schema(methods=["GET"], responses=s.VersionSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=s.VersionCreateSerializer,
        responses={201: s.VersionSerializer, 200: s.VersionSerializer, 400: ERROR},
    )
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
        version = plan_version_create(
            plan=plan, user=request.user, note=body.validated_data["note"]
        )
        code = status.HTTP_200_OK if version.number == latest else status.HTTP_201_CREATED
        return Response(s.VersionSerializer(version).data, status=code)

    @extend_schema(
        parameters=[
            OpenApiParameter("a", int, required=True),
            OpenApiParameter("b", int, required=True),
        ],
        responses=s.DiffSerializer,
    )
    @action(detail=True, methods=["get"], url_path="versions/diff")
    def version_diff(self, request: Request, slug=None) -> Response:
        """What changed from version ``a`` to version ``b``."""
        plan = self.get_object()
        given = {name: request.query_params.get(name, "") for name in ("a", "b")}
        for name, value in given.items():
            if not value.isdigit():
                raise ApplicationError(f"Give version number “{name}”.", field=name)
        numbers = {
            name: get_object_or_404(PlanVersion, plan=plan, number=int(value))
            for name, value in given.items()
        }
        changes = snapshot_diff(numbers["a"].snapshot, numbers["b"].snapshot)
        return Response(
            s.DiffSerializer(
                {"a": numbers["a"].number, "b": numbers["b"].number, "changes": changes}
            ).data
        )

    @extend_schema(parameters=[NUMBER], request=None, responses={200: s.PlanSerializer, 400: ERROR})
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/revert")
    def version_revert(self, request: Request, slug=None, number=None) -> Response:
        """Rewrite the plan's mappings and lookups from a version (the plan returns to draft)."""
        plan = self.get_object()
        version = get_object_or_404(PlanVersion, plan=plan, number=int(number))
        plan = plan_version_revert(plan=plan, version=version, user=request.user)
        return Response(s.PlanSerializer(plan).data)

    @extend_schema(
        parameters=[ENTITY_NAME], request=s.PreviewRequestSerializer, responses=s.PreviewSerializer
    )
    @action(
        detail=True,
        methods=["post"],
        write_capability=VIEW,
        url_path=r"entities/(?P<entity_name>[-a-zA-Z0-9_]+)/preview",
    )
    def preview(self, request: Request, slug=None, entity_name=None) -> Response:
        """The entity's current mapping applied to sample rows; errors per cell."""
        body = s.PreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entity = get_object_or_404(
            EntityMapping.objects.select_related("plan__source", "plan__target"),
            plan=self.get_object(),
            name=entity_name,
        )
        result = entity_preview(
            entity=entity, limit=body.validated_data["rows"], order=body.validated_data["sample"]
        )
        return Response(s.PreviewSerializer(result).data)

    @extend_schema(responses={(200, "text/yaml"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, YAMLRenderer])
    def yaml(self, request: Request, slug=None) -> Response:
        """The plan as v1 YAML (no secrets, no connection details)."""
        text = plan_export_yaml(plan=self.get_object())
        return HttpResponse(text, content_type="text/yaml; charset=utf-8")

    @extend_schema(
        request={
            "application/json": s.PlanImportSerializer,
            "multipart/form-data": s.PlanImportSerializer,
            "text/yaml": OpenApiTypes.OBJECT,
        },
        parameters=[
            OpenApiParameter(
                "replace",
                bool,
                description="With a text/yaml body: overwrite the plan with the same slug.",
            ),
            OpenApiParameter(
                "allow_unknown_schema",
                bool,
                description="With a "
                "text/yaml body: import although tables / columns are "
                "missing from the schemas.",
            ),
        ],
        responses={201: s.PlanSerializer, 400: ERROR},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[parsers.JSONParser, parsers.MultiPartParser, YAMLParser, AppYAMLParser],
    )
    def import_yaml(self, request: Request) -> Response:
        """Create (or with ``replace`` overwrite) a plan from v1 YAML; errors give line/column."""
        if isinstance(request.data, str):
            text, replace = request.data, flag(request.query_params.get("replace", ""))
            allow = flag(request.query_params.get("allow_unknown_schema", ""))
        else:
            refuse_oversized(request)
            body = s.PlanImportSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            upload = body.validated_data.get("file")
            text = upload_text(upload) if upload else body.validated_data.get("yaml")
            replace = body.validated_data["replace"]
            allow = body.validated_data["allow_unknown_schema"]
            if not text:
                raise ApplicationError("Send the YAML as “yaml” text or a “file”.", field="yaml")
        plan = plan_import_yaml(
            text=text, user=request.user, replace=replace, allow_unknown_schema=allow
        )
        return Response(s.PlanSerializer(plan).data, status=status.HTTP_201_CREATED)


@extend_schema_view(list=PLAN_FILTER)
class MilestoneViewSet(viewsets.ModelViewSet):
    serializer_class = s.MilestoneSerializer
    write_capability = EDIT

    def get_queryset(self) -> QuerySet:
        rows = Milestone.objects.select_related("plan").order_by(
            "plan__name", "position", "start", "id"
        )
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = edit.milestone_save(
            plan=data.pop("plan"), user=self.request.user, data=data
        )

    def perform_update(self, serializer) -> None:
        milestone = serializer.instance
        data = dict(serializer.validated_data)
        same_parent(milestone, data, "plan")
        data = {
            k: data.get(k, getattr(milestone, k)) for k in ("phase", "start", "end", "deliverable")
        }
        serializer.instance = edit.milestone_save(
            plan=milestone.plan, user=self.request.user, data=data, milestone=milestone
        )

    def perform_destroy(self, instance) -> None:
        edit.milestone_delete(milestone=instance, user=self.request.user)
