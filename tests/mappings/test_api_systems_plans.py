"""The workbench REST API for systems and plans: services behind every write, errors
naming the field, secrets never returned."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.conf import settings

from mappings.models import Plan, System
from tests.factories import SystemFactory
from tests.mappings.api_helpers import send
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401
from validation.models import AuditEvent

pytestmark = pytest.mark.django_db


SECRET = "api-Pa55-never-returned"


# --------------------------------------------------------------------------- systems


def test_api_system_crud_goes_through_the_audited_service(client_for, analyst):
    client = client_for(analyst)
    created = send(
        client,
        "post",
        "/api/systems/",
        {"name": "wh", "kind": "postgresql", "host": "wh", "database": "dw", "secret": SECRET},
    )
    url = f"/api/systems/{created.json()['uuid']}/"
    patched = send(client, "patch", url, {"description": "warehouse"})
    deleted = client.delete(url)
    actions = list(
        AuditEvent.objects.filter(object_repr="wh").order_by("id").values_list("action", flat=True)
    )
    assert (created.status_code, patched.status_code, deleted.status_code) == (201, 200, 204)
    assert actions == ["create", "update", "delete"]


def test_api_system_refuses_incomplete_postgresql(client_for, analyst):
    response = send(
        client_for(analyst),
        "post",
        "/api/systems/",
        {"name": "wh", "kind": "postgresql", "database": "dw"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "host"


def test_api_system_duplicate_name_names_the_field(client_for, analyst):
    SystemFactory(name="wh")
    response = send(
        client_for(analyst),
        "post",
        "/api/systems/",
        {"name": "wh", "kind": "sqlite", "path": f"{settings.MP_SYSTEMS_DIR}/wh.db"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "name"


def test_api_system_delete_in_use_names_the_plans(client_for, analyst, demo_plan):
    response = client_for(analyst).delete(f"/api/systems/{demo_plan.source.uuid}/")
    assert response.status_code == 400
    assert response.json()["field"] == "plans"
    assert demo_plan.name in response.json()["detail"]
    assert System.objects.filter(pk=demo_plan.source.pk).exists()


def test_api_system_secret_never_in_any_response(client_for, analyst, demo_plan):
    client = client_for(analyst)
    system = demo_plan.source
    bodies = [send(client, "patch", f"/api/systems/{system.uuid}/", {"secret": SECRET})]
    bodies += [
        client.get(url)
        for url in (
            "/api/systems/",
            f"/api/systems/{system.uuid}/",
            f"/api/systems/{system.uuid}/schema/",
            f"/api/plans/{demo_plan.slug}/",
            f"/api/plans/{demo_plan.slug}/yaml/",
        )
    ]
    bodies.append(client.post(f"/api/systems/{system.uuid}/test-connection/"))
    system.refresh_from_db()
    text = "".join(r.content.decode() for r in bodies)
    assert [r.status_code for r in bodies] == [200] * 7
    assert SECRET not in text and system.secret_ciphertext not in text
    assert bodies[0].json()["has_secret"] is True


def test_api_system_test_connection_lists_tables_for_an_analyst(client_for, analyst, demo_plan):
    response = client_for(analyst).post(f"/api/systems/{demo_plan.source.uuid}/test-connection/")
    body = response.json()
    assert response.status_code == 200
    assert body["ok"] is True and body["message"].startswith("SQLite")
    assert "customers" in [t["name"] for t in body["tables"]]


def test_api_system_test_connection_reports_failure(client_for, analyst):
    system = SystemFactory(path="/nonexistent/dir/none.sqlite3")
    body = client_for(analyst).post(f"/api/systems/{system.uuid}/test-connection/").json()
    assert body["ok"] is False and body["tables"] == []


def test_api_system_schema_describes_columns(client_for, viewer, demo_plan):
    tables = client_for(viewer).get(f"/api/systems/{demo_plan.target.uuid}/schema/").json()
    accounts = next(t for t in tables if t["name"] == "accounts")
    name = next(c for c in accounts["columns"] if c["name"] == "name")
    assert accounts["primary_key"] == ["id"]
    assert (name["max_length"], name["nullable"]) == (80, False)
    assert {"data_type", "has_default", "primary_key"} <= set(name)
    assert isinstance(accounts["row_estimate"], int)


# --------------------------------------------------------------------------- plans


def test_api_plan_create_status_and_edit_back_to_draft(client_for, analyst, approver, demo_systems):
    client = client_for(analyst)
    created = send(
        client,
        "post",
        "/api/plans/",
        {"name": "Wave 2", "source": demo_systems[0].name, "target": demo_systems[1].name},
    )
    slug = created.json()["slug"]
    review = send(client, "post", f"/api/plans/{slug}/status/", {"status": "in_review"})
    signed = send(
        client_for(approver), "post", f"/api/plans/{slug}/status/", {"status": "signed_off"}
    )
    edited = send(client_for(analyst), "patch", f"/api/plans/{slug}/", {"batch_size": 500})
    assert created.status_code == 201 and slug == "wave-2"
    assert created.json()["owner"] == analyst.username
    assert review.json()["status"] == "in_review"
    assert signed.status_code == 403  # signing off is the sign-off service's, not the status's
    assert (edited.json()["status"], edited.json()["batch_size"]) == ("draft", 500)


def test_api_plan_refuses_a_target_only_system_as_source(client_for, analyst, demo_systems):
    response = send(
        client_for(analyst),
        "post",
        "/api/plans/",
        {"name": "Wrong way", "source": demo_systems[1].name, "target": demo_systems[0].name},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "source"


def test_api_plan_sign_off_refused_for_an_analyst(client_for, analyst, demo_plan):
    client = client_for(analyst)
    send(client, "post", f"/api/plans/{demo_plan.slug}/status/", {"status": "in_review"})
    response = send(
        client, "post", f"/api/plans/{demo_plan.slug}/status/", {"status": "signed_off"}
    )
    assert response.status_code == 400
    assert "only through the sign-off" in response.json()["detail"]


def test_api_plan_that_never_ran_can_be_deleted(client_for, analyst, demo_plan):
    response = client_for(analyst).delete(f"/api/plans/{demo_plan.slug}/")
    assert response.status_code == 204
    assert not Plan.objects.filter(pk=demo_plan.pk).exists()
