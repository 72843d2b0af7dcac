"""The OpenAPI schema generates without warnings and validates."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/runs/", "/api/systems/", "/api/rule-types/", "/api/failed-records/"):
        assert f"  {path}:" in text
