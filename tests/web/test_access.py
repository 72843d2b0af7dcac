"""Every page and endpoint checks the user's role on the server side."""

from __future__ import annotations

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

ROLE_FIXTURES = ["analyst", "approver", "operator", "viewer", "admin_user"]


@pytest.mark.parametrize("url", ["/", "/plans/", "/systems/", "/runs/", "/api/plans/"])
def test_anonymous_is_refused(client, url):
    response = client.get(url)
    if url.startswith("/api/"):
        assert response.status_code in (401, 403)
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ROLE_FIXTURES)
def test_every_role_sees_the_dashboard(request, client_for, role):
    user = request.getfixturevalue(role)
    response = client_for(user).get("/")
    assert response.status_code == 200
    assert b"Dashboard" in response.content


def test_user_without_role_is_refused(client_for, outsider):
    client = client_for(outsider)
    assert client.get("/").status_code == 403
    assert client.get("/api/plans/").status_code == 403


@pytest.mark.parametrize(
    "role,allowed",
    [
        ("admin_user", True),
        ("analyst", False),
        ("approver", False),
        ("operator", False),
        ("viewer", False),
    ],
)
def test_admin_site_only_for_admins(request, client_for, role, allowed):
    user = request.getfixturevalue(role)
    response = client_for(user).get("/admin/")
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "role,status",
    [
        ("analyst", 201),
        ("admin_user", 201),
        ("viewer", 403),
        ("approver", 403),
        ("operator", 403),
    ],
)
def test_api_system_create_needs_manage_systems(request, client_for, role, status):
    user = request.getfixturevalue(role)
    response = client_for(user).post(
        "/api/systems/",
        {"name": f"s-{role}", "kind": "sqlite", "path": f"{settings.MP_SYSTEMS_DIR}/x.db"},
        content_type="application/json",
    )
    assert response.status_code == status, response.content


def test_login_page_renders_and_logs_in(client, analyst):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "ana", "password": "pw-for-tests-1"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_login_and_failed_login_are_audited(client, analyst):
    from validation.models import AuditEvent

    client.post("/accounts/login/", {"username": "ana", "password": "wrong"})
    client.post("/accounts/login/", {"username": "ana", "password": "pw-for-tests-1"})
    assert list(AuditEvent.objects.order_by("id").values_list("action", "object_repr")) == [
        ("login_failed", "ana"),
        ("login", "ana"),
    ]


def test_logout_requires_post_and_ends_session(client_for, viewer):
    client = client_for(viewer)
    assert client.post("/accounts/logout/").status_code in (200, 302)
    assert client.get("/").status_code == 302


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert response.status_code == 200


def test_healthz_reports_broker_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False


def test_openapi_schema_served(client_for, viewer):
    response = client_for(viewer).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/systems/" in response.content


@pytest.mark.parametrize(
    "model",
    [
        "validation/signoff",
        "validation/uatresult",
        "validation/validationresult",
        "audit/auditevent",
        "runs/run",
        "runs/batch",
        "runs/failedrecord",
        "runs/ledgerentry",
        "runs/rollback",
        "runs/runlog",
    ],
)
def test_the_admin_cannot_forge_evidence(client_for, admin_user, model):
    """REVIEW9 J3-3: sign-offs, audit events and run records were addable/changeable in the
    Django admin, unaudited; they are read-only there (the services write them)."""
    from django.apps import apps

    from validation.models import SignOff

    client = client_for(admin_user)
    assert client.get(f"/admin/{model}/").status_code == 200  # still readable
    assert client.get(f"/admin/{model}/add/").status_code == 403
    assert client.post(f"/admin/{model}/add/", {"reason": "FORGED"}).status_code == 403
    assert SignOff.objects.count() == 0
    from django.contrib import admin as django_admin

    model_admin = django_admin.site._registry[apps.get_model(*model.split("/"))]
    assert not model_admin.has_change_permission(None)
    assert not model_admin.has_delete_permission(None)


def test_role_refusals_say_who_may_in_words_on_page_and_api(client_for, viewer, analyst):
    """REVIEW9 J4-1: refusals named an internal code ("mp.edit_plan") or said nothing."""
    words = "Your role does not allow this: only an analyst (or an admin) may edit plans."
    page = client_for(viewer).get("/plans/new/")
    api = client_for(viewer).post("/api/plans/", {}, content_type="application/json")
    assert page.status_code == 403 and words in page.content.decode()
    assert api.status_code == 403 and api.json()["detail"] == words
    signoff = client_for(analyst).post("/api/signoffs/", {}, content_type="application/json")
    assert signoff.status_code == 403
    assert "only an approver may sign a plan version off" in signoff.json()["detail"]
    assert "mp." not in page.content.decode().split("<main", 1)[-1]
