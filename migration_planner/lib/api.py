"""DRF glue: turns ApplicationError into a 400/403 response with a clear body."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ApplicationError, PermissionDeniedError


def exception_handler(exc, context):
    """ApplicationError -> 400 (403 for permission) with {"detail", "field"}; else DRF default."""
    if isinstance(exc, ApplicationError):
        code = status.HTTP_403_FORBIDDEN if isinstance(exc, PermissionDeniedError) else 400
        body = {"detail": exc.message, "field": exc.field, **exc.extra}
        return Response(body, status=code)
    return drf_exception_handler(exc, context)

# A URL segment that is a UUID: anything else is a 404 from the router, never a 500.
UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
