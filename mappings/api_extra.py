"""API actions the pages offer beyond CRUD: schema drift and re-baseline,
the YAML import's validate step, mapping suggestions, table profiling and file uploads.

Mixed into ``PlanViewSet`` / ``SystemViewSet`` (``mappings.api``); each action calls the same
service or selector as its page, and ``RolePermission`` checks ``write_capability`` first.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import parsers, renderers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.uploads import upload_refusal

from . import serializers as s
from . import services_edit as edit
from .models import EntityMapping, PlanVersion, System
from .serializers_reports import (
    DriftReportSerializer,
    ImportCheckSerializer,
    SuggestionAcceptSerializer,
    SuggestionSerializer,
    TableProfileSerializer,
)

EDIT = edit.EDIT
MANAGE = "mp.manage_systems"
ERROR = OpenApiResponse(description='Refused: {"detail": "...", "field": "..."}')


# --------------------------------------------------------------------------- renderers


class _Text(renderers.BaseRenderer):
    """A text (or bytes) body as is; an error dict becomes JSON text."""

    charset: str | None = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, bytes):
            return data
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        return text.encode("utf-8")


class DocumentHTMLRenderer(_Text):
    media_type, format = "text/html", "html"


class MarkdownRenderer(_Text):
    media_type, format = "text/markdown", "md"


class PDFRenderer(_Text):
    media_type, format, charset = "application/pdf", "pdf", None


# --------------------------------------------------------------------------- data helpers


def drift_data(report) -> dict:
    """A DriftReport as plain data for DriftReportSerializer."""
    return {
        "version": report.version.number if report.version else None,
        "source": report.source.name,
        "target": report.target.name,
        "checked_at": report.checked_at,
        "stored": report.stored,
        "blocking": len(report.blocking),
        "message": report.message,
        "entities": [
            {
                "entity": e.entity,
                "source_table": e.source_table,
                "target_table": e.target_table,
                "items": [
                    {**asdict(d), "breaks": list(d.breaks), "text": d.text()} for d in e.shown
                ],
            }
            for e in report.entities
        ],
    }


def _counted(pairs) -> list[dict]:
    return [{"value": str(v), "count": int(n)} for v, n in pairs]


def profile_data(profile) -> dict:
    """A TableProfile as plain data for TableProfileSerializer."""
    columns = [
        {
            **{
                k: getattr(c, k)
                for k in (
                    "name",
                    "rows",
                    "nulls",
                    "null_pct",
                    "distinct",
                    "minimum",
                    "maximum",
                    "max_length",
                    "shape_count",
                    "padded",
                    "mixed_case",
                )
            },
            "top_values": _counted(c.top_values),
            "shapes": _counted(c.shapes),
            "suggestions": [str(x) for x in c.suggestions],
        }
        for c in profile.columns
    ]
    return {
        "table": profile.table,
        "rows": profile.rows,
        "sampled": profile.sampled,
        "key": list(profile.key),
        "duplicate_keys": _counted(profile.duplicate_keys),
        "duplicate_total": profile.duplicate_total,
        "columns": columns,
    }


def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="Version number.")
ENTITY_NAME = OpenApiParameter(
    "entity_name", str, OpenApiParameter.PATH, description="The entity's name within the plan."
)
TARGET = OpenApiParameter(
    "target", str, description="Check against this target system (name) instead of the plan's."
)
DOC_FORMAT = OpenApiParameter(
    "format", str, enum=["html", "md", "pdf"], description="html (default), md (Markdown) or pdf."
)


# --------------------------------------------------------------------------- plan actions


class PlanExtraActions:
    """Drift, re-baseline, import validation and mapping suggestions (the plan document, which
    shows sign-offs too, is composed above the apps: ``migration_planner.plan_api``)."""

    def _drift(self, request: Request, version: PlanVersion | None) -> Response:
        from .services_drift import plan_version_drift

        plan = self.get_object()
        if version is None:
            raise ApplicationError(
                "The plan has no version yet: freeze one first.", field="version"
            )
        target = plan.target
        if request.query_params.get("target"):
            target = get_object_or_404(System, name=request.query_params["target"])
        report = plan_version_drift(version=version, target=target)
        return Response(DriftReportSerializer(drift_data(report)).data)

    @extend_schema(parameters=[TARGET], responses={200: DriftReportSerializer, 400: ERROR})
    @action(detail=True, methods=["get"])
    def drift(self, request: Request, slug=None) -> Response:
        """The latest version's stored schemas against the live source and target."""
        plan = self.get_object()
        return self._drift(request, plan.versions.order_by("-number").first())

    @extend_schema(parameters=[NUMBER, TARGET], responses={200: DriftReportSerializer, 400: ERROR})
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)/drift")
    def version_drift(self, request: Request, slug=None, number=None) -> Response:
        """One version's stored schemas against the live source and target."""
        plan = self.get_object()
        return self._drift(request, get_object_or_404(PlanVersion, plan=plan, number=int(number)))

    @extend_schema(request=None, responses={201: s.VersionSerializer, 400: ERROR})
    @action(detail=True, methods=["post"], url_path="drift/rebaseline", write_capability=EDIT)
    def rebaseline(self, request: Request, slug=None) -> Response:
        """Freeze a new version built against the live schemas (after reviewing the drift)."""
        from .services import plan_version_create

        version = plan_version_create(
            plan=self.get_object(),
            user=request.user,
            rebaseline=True,
            note="built against the live schema after drift review",
        )
        return Response(s.VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={
            "application/json": s.PlanImportSerializer,
            "multipart/form-data": s.PlanImportSerializer,
        },
        responses={200: ImportCheckSerializer, 400: ERROR},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import/check",
        write_capability=EDIT,
        parser_classes=[parsers.JSONParser, parsers.MultiPartParser],
    )
    def import_check(self, request: Request) -> Response:
        """The import page's validate step: what would be created, and every table / column
        the live schemas lack (with line and column); writes nothing."""
        from .yaml_io import plan_import_check

        refusal = upload_refusal(request)
        if refusal:
            raise ApplicationError(refusal, field="file")
        body = s.PlanImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data.get("file")
        text = body.validated_data.get("yaml") or ""
        if upload is not None:
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ApplicationError(
                    f"{upload.name}: not UTF-8 text (byte {exc.start}).", field="file"
                ) from exc
        if not text.strip():
            raise ApplicationError("Send the YAML as “yaml” text or a “file”.", field="yaml")
        check = plan_import_check(text=text)
        return Response(
            ImportCheckSerializer(
                {
                    "name": check.name,
                    "slug": check.slug,
                    "exists": check.exists,
                    "counts": check.counts,
                    "problems": [asdict(p) for p in check.problems],
                }
            ).data
        )

    @extend_schema(
        methods=["GET"],
        parameters=[ENTITY_NAME],
        responses={200: SuggestionSerializer(many=True), 400: ERROR},
    )
    @extend_schema(
        methods=["POST"],
        parameters=[ENTITY_NAME],
        request=SuggestionAcceptSerializer,
        responses={201: s.FieldMappingSerializer, 400: ERROR},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        write_capability=EDIT,
        url_path=r"entities/(?P<entity_name>[-a-zA-Z0-9_]+)/suggestions",
    )
    def suggestions(self, request: Request, slug=None, entity_name=None) -> Response:
        """GET: source → target column pairs for the entity's unmapped target columns, best
        first; POST ``{source, target}`` accepts one (maps the target column from the source)."""
        from .suggest import entity_suggestions

        entity = get_object_or_404(
            EntityMapping.objects.select_related("plan__source", "plan__target"),
            plan=self.get_object(),
            name=entity_name,
        )
        if request.method == "GET":
            items = [asdict(x) for x in entity_suggestions(entity=entity)]
            return Response(SuggestionSerializer(items, many=True).data)
        body = SuggestionAcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        field = edit.field_create(
            entity=entity,
            user=request.user,
            data={
                "target_column": body.validated_data["target"],
                "source_columns": [body.validated_data["source"]],
            },
        )
        return Response(s.FieldMappingSerializer(field).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------- system actions


class SystemExtraActions:
    """Profiling a table (uploads: ``SystemViewSet.upload``, staged by a worker)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("table", str, OpenApiParameter.PATH),
            OpenApiParameter(
                "dupes",
                str,
                many=True,
                description="Duplicate candidates on these columns (repeat for several "
                "together); the primary key by default.",
            ),
        ],
        responses={200: TableProfileSerializer, 400: ERROR},
    )
    @action(detail=True, methods=["get"], url_path=r"tables/(?P<table>[^/]+)/profile")
    def profile(self, request: Request, uuid=None, table=None) -> Response:
        """Nulls, distinct values, min / max, top values, value shapes, duplicate keys and
        rule suggestions per column, on a bounded sample (as the profiling page)."""
        from .profiling import SAMPLE_ROWS, profile_frame
        from .schema import sample_frame, system_table

        system = self.get_object()
        info = system_table(system, table)
        frame = sample_frame(
            system, table, info.column_names, limit=SAMPLE_ROWS + 1, key=info.primary_key
        )
        picked = [c for c in request.query_params.getlist("dupes") if c in info.column_names]
        profile = profile_frame(
            table,
            frame.head(SAMPLE_ROWS),
            key=tuple(picked) or info.primary_key,
            sampled=len(frame) > SAMPLE_ROWS,
        )
        return Response(TableProfileSerializer(profile_data(profile)).data)
