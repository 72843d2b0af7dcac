"""Issue 17.8: schemathesis over every operation of the OpenAPI schema, as an admin and as a
viewer: no 5xx, and every documented response conforms to the schema. The generated cases run
in-process on the WSGI app and the test database (schemathesis's Python API with Hypothesis)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.services import token_create
from tests.web.test_every_url_checks_roles import objects  # noqa: F401 -- a fixture

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        os.environ.get("MP_SCHEMATHESIS") != "1",
        reason="opt-in: MP_SCHEMATHESIS=1 bash scripts/test.sh tests/web/test_schemathesis.py",
    ),
]
EXAMPLES = 5


@pytest.fixture
def same_connection():
    """Requests stay on the test's database connection (as Django's test client does, the
    request signals do not close it)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _exercise(operation, headers: dict, failures: list[str]) -> None:
    """Run EXAMPLES generated cases of one operation; collect what fails."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - the shrunk failure
        failures.append(f"{operation.label}: {' '.join(str(exc).split())[:400]}")


def _failures(user) -> tuple[int, list[str]]:
    token = token_create(user=user, name="schemathesis")[1]
    headers = {"Authorization": f"Token {token}"}
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers=headers
    )
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        _exercise(result.ok(), headers, failures)
    return operations, sorted(set(failures))


@pytest.mark.parametrize("role", ["admin_user", "viewer"])
def test_api_has_no_5xx_and_conforms_to_its_schema(request, role, objects, same_connection):  # noqa: F811
    operations, failures = _failures(request.getfixturevalue(role))
    assert operations > 60
    assert failures == []
