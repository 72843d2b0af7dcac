"""Issue 17.8: schemathesis over every operation of the OpenAPI schema, as an admin and as a
viewer: no 5xx, and every answer conforms to the schema (status code documented, content type
documented, body valid against the documented schema). Cases run in-process on the WSGI app
and the test database (schemathesis's Python API with Hypothesis, derandomised).

Each operation gets a few generated cases (random path parameters: the 404 and 400 answers)
and, where it has path parameters, cases on objects that exist (the 200 answers: lists,
details, YAML, CSV, previews), so the success bodies are checked too. Bounded for the suite:
about 500 calls."""

# ruff: noqa: F811 -- pytest fixtures imported from the role-matrix test are used as arguments
from __future__ import annotations

import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import token_create
from tests.web.test_every_url_checks_roles import (  # noqa: F401 -- fixtures
    API_UUID,
    matrix_objects,
    objects,
)

pytestmark = pytest.mark.django_db
# per operation: generated cases, cases on existing objects (operations with a path), and
# negative cases (data that does not fit the schema: a 4xx, never a 5xx)
EXAMPLES = {"admin_user": (2, 1, 1), "viewer": (1, 1, 0)}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def same_connection():
    """Requests stay on the test's database connection (as Django's test client does, the
    request signals do not close it)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _existing(path: str, objects: dict) -> dict | None:
    """Path parameters naming objects that exist, or None (a DELETE would remove them)."""
    collection = path.split("/")[2]
    known = {
        "slug": objects["slug"],
        "entity_name": objects["entity"],
        "number": 1,
        "pk": objects["pk"],
        "id": objects["pk"],
        "name": "trim",
    }
    values = {}
    for name in re.findall(r"{(\w+)}", path):
        if name == "uuid":
            key = API_UUID.get(collection)
            if key not in objects["uuid"]:
                return None
            values[name] = objects["uuid"][key]
        elif name in known:
            values[name] = known[name]
        else:
            return None
    return values or None


def _exercise(
    operation,
    headers: dict,
    counts: dict,
    failures: list[str],
    *,
    generated: int,
    existing: dict | None,
    real: int,
    negative: int,
) -> None:
    """Run the cases of one operation; count the calls, collect what fails."""

    def check(case) -> None:
        response = case.call(headers=headers)
        counts[response.status_code // 100] = counts.get(response.status_code // 100, 0) + 1
        case.validate_response(response, checks=CHECKS)

    def run(examples: int, fixed: dict | None, mode=GenerationMode.POSITIVE) -> None:
        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def cases(case):
            if fixed:
                case.path_parameters = {**(case.path_parameters or {}), **fixed}
            check(case)

        try:
            cases()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - the shrunk failure
            failures.append(f"{operation.label}: {' '.join(str(exc).split())[:500]}")

    run(generated, None)
    if existing and real and operation.method.lower() != "delete":
        run(real, existing)
    if negative:
        run(negative, None, GenerationMode.NEGATIVE)


def _failures(user, objects: dict) -> tuple[int, dict, list[str]]:
    token = token_create(user=user, name="schemathesis")[1]
    headers = {"Authorization": f"Token {token}"}
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers=headers
    )
    generated, real, negative = EXAMPLES["admin_user" if user.is_superuser else "viewer"]
    failures: list[str] = []
    counts: dict[int, int] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        _exercise(
            operation,
            headers,
            counts,
            failures,
            generated=generated,
            existing=_existing(operation.path, objects),
            real=real,
            negative=negative,
        )
    return operations, counts, sorted(set(failures))


@pytest.mark.parametrize("role", ["admin_user", "viewer"])
def test_api_has_no_5xx_and_conforms_to_its_schema(request, role, matrix_objects, same_connection):
    operations, counts, failures = _failures(request.getfixturevalue(role), matrix_objects)
    print(f"{role}: {operations} operations, calls by status class {sorted(counts.items())}")
    assert operations > 90
    assert counts.get(2, 0) > 25  # success bodies were checked, not only refusals
    assert counts.get(5, 0) == 0
    assert failures == [], "\n".join(failures)
