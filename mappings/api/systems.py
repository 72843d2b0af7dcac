"""Systems: create, update, delete, test the connection, upload a file, read the schema."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import parsers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.api import UUID_PATTERN

from .. import serializers as s
from ..api_extra import SystemExtraActions
from ..models import System
from ..schema import system_schema, system_test_connection
from ..services_systems import MANAGE, system_delete, system_save
from .common import ERROR, flag


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
        serializer.instance = system_save(
            user=self.request.user, data=data, secret=secret, system=serializer.instance
        )

    def perform_destroy(self, instance) -> None:
        system_delete(system=instance, user=self.request.user)

    @extend_schema(request=None, responses=s.ConnectionReportSerializer)
    @action(detail=True, methods=["post"], url_path="test-connection", write_capability=MANAGE)
    def test_connection(self, request: Request, uuid=None) -> Response:
        """Connect, read the server version and the tables' row estimates (never a 500)."""
        report = system_test_connection(self.get_object())
        tables = [{"name": name, "row_estimate": rows} for name, rows in report.tables]
        return Response(
            s.ConnectionReportSerializer(
                {"ok": report.ok, "message": report.message, "tables": tables}
            ).data
        )

    @extend_schema(
        request={"multipart/form-data": s.FileUploadRequestSerializer},
        responses={202: s.FileUploadSerializer, 400: ERROR, 413: ERROR},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="upload",
        write_capability=MANAGE,
        parser_classes=[parsers.MultiPartParser],
    )
    def upload(self, request: Request, uuid=None) -> Response:
        """Keep the file (streamed, at most MP_UPLOAD_MAX_MB: else 413) and queue its staging
        on a worker: 202 with the upload, whose progress GET /api/file-uploads/{uuid}/ shows."""
        from ..api_uploads import upload_accept

        return upload_accept(request, self.get_object())

    @extend_schema(
        parameters=[OpenApiParameter("refresh", bool, description="Bypass the 30 s schema cache.")],
        responses={200: s.TableSerializer(many=True), 400: ERROR},
    )
    @action(detail=True, methods=["get"], url_path="schema", pagination_class=None)
    def table_schema(self, request: Request, uuid=None) -> Response:
        """Tables with columns, types, lengths, nullability, keys and row estimates."""
        schema = system_schema(
            self.get_object(), fresh=flag(request.query_params.get("refresh", ""))
        )
        tables = sorted(schema.tables.values(), key=lambda t: t.name)
        return Response(s.TableSerializer(tables, many=True).data)
