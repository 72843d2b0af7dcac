"""Issue 17.8: schemathesis over the whole OpenAPI schema, as an admin and as a viewer: no 5xx
and every documented response conforms to the schema (the generated cases run in-process on
the WSGI app and the test database)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.web.test_every_url_checks_roles import objects  # noqa: F401 -- a fixture

pytestmark = pytest.mark.django_db
ROLE = {"admin": "admin_user", "viewer": "viewer"}


@pytest.fixture
def api_schema(admin_user, objects):  # noqa: F811
    token = Token.objects.get_or_create(user=admin_user)[0]
    return schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json",
        get_wsgi_application(),
        headers={"Authorization": f"Token {token.key}"},
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_api_has_no_5xx_and_conforms_to_its_schema(case, role, request):
    user = request.getfixturevalue(ROLE[role])
    token = Token.objects.get_or_create(user=user)[0]
    case.call_and_validate(
        headers={"Authorization": f"Token {token.key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
