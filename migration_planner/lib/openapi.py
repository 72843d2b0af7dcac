"""OpenAPI schema post-processing: the refusals every operation can answer, documented."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "description": 'A refusal: {"detail": "...", "field": "..."}; a form error has both too '
    "(every message prefixed by its field; the first field at fault) and also maps each field "
    "(or non_field_errors) to its messages.",
    "properties": {
        "detail": {"type": "string"},
        "field": {
            "description": "The field at fault (a string), or a form field's messages",
            "nullable": True,
        },
    },
    "additionalProperties": True,
}
_WHY = {
    "400": "Invalid input: what is wrong and where.",
    "401": "Not logged in (no session or token).",
    "403": "The user's role does not allow this.",
    "404": "No such object (or page).",
    "409": "Conflicts with another run's work.",
}
_WRITES = {"post", "put", "patch", "delete"}


def _codes(method: str, operation: dict) -> list[str]:
    params = operation.get("parameters", [])
    queried = any(p.get("in") == "query" for p in params)
    pathed = any(p.get("in") == "path" for p in params)
    codes = ["401", "403"]
    if "requestBody" in operation or queried or method in _WRITES:
        codes.append("400")
    if pathed or queried or "requestBody" in operation:
        codes.append("404")  # a page, the object in the path, or one named in the body
    if method in _WRITES:
        codes.append("409")
    return codes


def error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular post-processing hook: add the error answers (400, 401, 403, 404, 409)
    each operation can give, with the Error body, where the view did not declare them."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", _ERROR)
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in _codes(method, operation):
                entry = responses.setdefault(code, {"description": _WHY[code]})
                entry.setdefault("content", {"application/json": {"schema": ref}})
    return result
