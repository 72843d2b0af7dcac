"""REST endpoints for file uploads: accepting one (SystemViewSet.upload) and its progress."""

from __future__ import annotations

import uuid as uuid_lib

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from migration_planner.lib.api import UUID_PATTERN
from migration_planner.lib.errors import ApplicationError, TooLargeError
from migration_planner.lib.uploads import upload_refusal

from . import serializers as s
from .models import FileUpload, System
from .services_uploads import file_upload_receive


def upload_accept(request: Request, system: System) -> Response:
    """Parse the multipart body (the size limit applies while it streams), keep the file and
    queue it: 202 with the upload and its Location."""
    body = s.FileUploadRequestSerializer(data=request.data)
    refusal = upload_refusal(request)
    if refusal:
        raise TooLargeError(refusal, field="file")
    body.is_valid(raise_exception=True)
    upload = file_upload_receive(
        system=system,
        user=request.user,
        upload=body.validated_data["file"],
        table=body.validated_data.get("table"),
    )
    location = f"/api/file-uploads/{upload.uuid}/"
    return Response(
        s.FileUploadSerializer(upload).data,
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": location},
    )


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("system", str, description="Only this system's uploads (its UUID).")
        ]
    )
)
class FileUploadViewSet(viewsets.ReadOnlyModelViewSet):
    """Uploads, newest first: status (queued, parsing, staged, failed), rows parsed and bytes
    read so far, then the staged table and first rows, or the error with row and column."""

    serializer_class = s.FileUploadSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self) -> QuerySet[FileUpload]:
        queryset = FileUpload.objects.select_related("system").order_by("-created_at", "-id")
        system = self.request.query_params.get("system")
        if system is not None:
            try:
                queryset = queryset.filter(system__uuid=uuid_lib.UUID(system))
            except ValueError:
                raise ApplicationError(f"“{system}” is not a UUID.", field="system") from None
        return queryset
