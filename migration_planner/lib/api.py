"""DRF glue: turns ApplicationError into a 400/403 response with a clear body."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ApplicationError, ConflictError, PermissionDeniedError, TooLargeError


def exception_handler(exc, context):
    """ApplicationError -> 400 (403 permission, 409 conflict, 413 too large) with {"detail",
    "field"}; else DRF default."""
    if isinstance(exc, ApplicationError):
        code = status.HTTP_400_BAD_REQUEST
        if isinstance(exc, PermissionDeniedError):
            code = status.HTTP_403_FORBIDDEN
        elif isinstance(exc, ConflictError):
            code = status.HTTP_409_CONFLICT
        elif isinstance(exc, TooLargeError):
            code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        body = {"detail": exc.message, "field": exc.field, **exc.extra}
        return _as_json(Response(body, status=code), context)
    response = drf_exception_handler(exc, context)
    if isinstance(exc, ValidationError) and response is not None:
        _add_detail(response)
    return _as_json(response, context)


def _add_detail(response: Response) -> None:
    """A form error keeps DRF's map of field -> messages and also gets the Error body's
    "detail" (every message, prefixed by its field) and "field" (the first field at fault), so
    a client reads every 400 the same way. Keys a serializer already uses are left alone."""
    data = response.data
    if not isinstance(data, dict) or not data:
        if isinstance(data, list) and data:
            response.data = {"detail": " ".join(str(m) for m in data), "field": None}
        return
    parts = []
    for name, messages in data.items():
        flat = messages if isinstance(messages, list) else [messages]
        text = " ".join(str(m) for m in flat)
        parts.append(text if name == "non_field_errors" else f"{name}: {text}")
    first = next(iter(data))
    data.setdefault("detail", "; ".join(parts))
    data.setdefault("field", None if first == "non_field_errors" else first)


def _as_json(response: Response | None, context) -> Response | None:
    """Refusals are JSON even from an endpoint that answers CSV, YAML, HTML or PDF (as the
    schema says)."""
    request = context.get("request")
    renderer = getattr(request, "accepted_renderer", None)
    if response is not None and request is not None and not isinstance(renderer, JSONRenderer):
        # (no renderer yet: the negotiation itself failed, e.g. an unknown ?format=)
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    return response


# A URL segment that is a UUID: anything else is a 404 from the router, never a 500.
UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class SafeJSONParser(JSONParser):
    """JSON bodies; one nested too deeply to parse is a 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("The JSON body nests objects or arrays too deeply.") from None
