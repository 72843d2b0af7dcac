"""What the mapping workbench's API modules share: capabilities, the refusal response,
text bodies (YAML, CSV) and the small request helpers."""

from __future__ import annotations

import json
import uuid as uuid_lib

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import parsers, renderers
from rest_framework.request import Request

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.uploads import upload_refusal

from .. import services_edit as edit

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
            raise ApplicationError(
                f"The body is not UTF-8 text (byte {exc.start}).", field="body"
            ) from exc


class YAMLParser(_TextParser):
    media_type = "text/yaml"


class AppYAMLParser(_TextParser):
    media_type = "application/yaml"


class CSVParser(_TextParser):
    media_type = "text/csv"


def refuse_oversized(request: Request) -> None:
    refusal = upload_refusal(request)
    if refusal:
        raise ApplicationError(refusal, field="file")


def upload_text(upload) -> str:
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            f"{upload.name}: not UTF-8 text (byte {exc.start}).", field="file"
        ) from exc


def uuid_filter(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return str(uuid_lib.UUID(value))
    except ValueError:
        raise ApplicationError(f"“{value}” is not a UUID.", field=name) from None


def same_parent(instance, data: dict, name: str) -> None:
    """Rows never move to another parent through an update."""
    parent = data.pop(name, None)
    if parent is not None and parent.pk != getattr(instance, f"{name}_id"):
        raise ApplicationError(f"The {name} of an existing row cannot be changed.", field=name)


def flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


PLAN_FILTER = extend_schema(
    parameters=[OpenApiParameter("plan", str, description="A plan's slug.")]
)
