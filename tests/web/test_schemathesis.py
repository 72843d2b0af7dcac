"""Issue 17.8: schemathesis over the whole OpenAPI schema, as an admin and as a viewer: no 5xx
and every documented response conforms to the schema (the generated cases run in-process on
the WSGI app and the test database)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.web.test_every_url_checks_roles import objects  # noqa: F401 -- a fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_schema(admin_user, objects):  # noqa: F811
    """The schema, loaded from the app; requests stay on the test's database connection (as
    Django's test client does, the request signals do not close it)."""
    token = Token.objects.get_or_create(user=admin_user)[0]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(
            "/api/schema/?format=json",
            get_wsgi_application(),
            headers={"Authorization": f"Token {token.key}"},
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(params=["admin_user", "viewer"])
def api_token(request) -> str:
    """A token of each role the audit used: an admin (every write allowed) and a viewer."""
    return Token.objects.get_or_create(user=request.getfixturevalue(request.param))[0].key


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_has_no_5xx_and_conforms_to_its_schema(case, api_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {api_token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
