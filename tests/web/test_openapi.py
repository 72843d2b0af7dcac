"""The OpenAPI schema generates without warnings and validates."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/runs/", "/api/systems/", "/api/rule-types/", "/api/failed-records/"):
        assert f"  {path}:" in text


@pytest.mark.django_db
def test_openapi_schema_declares_the_token_scheme(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out))
    text = out.read_text()
    assert "    tokenAuth:\n      type: http\n" in text
    assert "scheme: bearer" in text


def test_django_start_up_does_not_import_the_schema_generator():
    """A management command or a worker never builds the OpenAPI document: start-up leaves
    drf-spectacular's generator unimported (~0.1 s of CPU per process; run_plan --wait's
    start-up is in the bench's figures)."""
    code = "import django, sys; django.setup(); print('drf_spectacular.plumbing' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "migration_planner.settings"},
    )
    assert done.stdout.strip() == "False"
