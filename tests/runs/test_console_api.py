"""The runs console API: launch with the production gate, status, controls, the error queue
(filter, correct, re-process, ignore), rollback and rollbacks; and the OpenAPI schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from mappings.services import plan_version_create
from runs.enums import RunStatus
from runs.models import FailedRecord, Run
from runs.services import run_create, run_prepare
from tests.support import pg
from validation.models import SignOff

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _launch(client, plan, mode="dry_run", **extra):
    body = {"plan": plan.slug, "target": plan.target.name, "mode": mode, **extra}
    return client.post("/api/runs/", body, format="json")


def test_api_launch_refused_to_viewer(viewer, demo_plan):
    assert _launch(_api(viewer), demo_plan).status_code == 403
    assert Run.objects.count() == 0


def test_api_launch_one_entity_dry_run_and_read_status(analyst, demo_plan, eager_celery):
    client = _api(analyst)
    created = _launch(client, demo_plan, entity="accounts")
    assert created.status_code == 201, created.content
    status = client.get(f"/api/runs/{created.data['uuid']}/").json()
    assert (status["status"], status["scope_entity"], status["extracted"]) == (
        "succeeded",
        "accounts",
        300,
    )
    assert status["progress"]["pct"] == 100
    assert status["progress"]["open_errors"] == status["failed"]
    assert [e["name"] for e in status["progress"]["entities"]] == ["accounts"]


def test_api_production_gate(analyst, operator, approver, demo_plan, eager_celery):
    demo_plan.target.environment = "prod"
    demo_plan.target.save()
    assert _launch(_api(analyst), demo_plan, mode="load").status_code == 403
    refused = _launch(_api(operator), demo_plan, mode="load")
    assert refused.status_code == 400
    assert refused.json()["signoff_required"] is True
    assert "must be signed off" in refused.json()["detail"]
    version = plan_version_create(plan=demo_plan, user=None)
    SignOff.objects.create(plan=demo_plan, version=version, approver=approver, decision="approved")
    launched = _launch(_api(operator), demo_plan, mode="load")
    assert launched.status_code == 201 and launched.data["status"] == "succeeded"


def test_api_controls_per_role(viewer, analyst, demo_plan):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    run_prepare(run_id=run.pk)
    url = f"/api/runs/{run.uuid}/"
    assert _api(viewer).post(url + "pause/").status_code == 403
    client = _api(analyst)
    assert client.post(url + "pause/").json()["status"] == "paused"
    assert client.post(url + "pause/").status_code == 400
    assert client.post(url + "resume/").json()["status"] == "running"
    assert client.post(url + "cancel/").json()["status"] in ("cancelling", "cancelled")


def test_api_queue_filters_correct_and_reprocess_once(
    analyst, viewer, demo_plan, demo_target_db, eager_celery
):
    run = run_create(plan=demo_plan, user=None, mode="load")
    client = _api(analyst)
    listed = client.get(
        "/api/failed-records/",
        {"run": str(run.uuid), "entity": "accounts", "field": "email", "status": "open"},
    ).json()
    assert listed["results"] and {r["field"] for r in listed["results"]} == {"email"}
    record = next(r for r in listed["results"] if len(r["errors"]) == 1)
    url = f"/api/failed-records/{record['uuid']}/"
    assert _api(viewer).patch(url, {"corrected_values": {}}, format="json").status_code == 403
    patched = client.patch(
        url, {"corrected_values": {"Email_Address": "api@example.com"}}, format="json"
    )
    assert patched.json()["status"] == "fixed"
    result = client.post(
        "/api/failed-records/reprocess/", {"ids": [record["uuid"]]}, format="json"
    ).json()
    assert (result["fixed"], result["still_failing"]) == (1, 0)
    again = client.post("/api/failed-records/reprocess/", {"ids": [record["uuid"]]}, format="json")
    assert again.status_code == 400
    assert pg.query(
        demo_target_db, "SELECT count(*) FROM accounts WHERE email = %s", ("api@example.com",)
    ) == [(1,)]
    assert client.get(url).json()["status"] == "reprocessed"


def test_api_ignore_by_filter_with_reason(analyst, demo_plan, eager_celery):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    client = _api(analyst)
    body = {"filter": {"run": str(run.uuid), "entity": "orders"}}
    assert client.post("/api/failed-records/ignore/", body, format="json").status_code == 400
    done = client.post(
        "/api/failed-records/ignore/", body | {"reason": "test orders"}, format="json"
    ).json()
    assert done["ignored"] == FailedRecord.objects.filter(run=run, entity="orders").count() > 0


def test_api_rollback_operator_only_and_listed(analyst, operator, demo_plan, eager_celery):
    run = run_create(plan=demo_plan, user=None, mode="load")
    url = f"/api/runs/{run.uuid}/"
    assert _api(analyst).post(url + "rollback/", {}, format="json").status_code == 403
    requested = _api(operator).post(url + "rollback/", {"reason": "api"}, format="json")
    assert requested.status_code == 202
    history = _api(analyst).get(url + "rollbacks/").json()
    assert [(h["status"], h["tables_differing"]) for h in history] == [("verified", [])]
    assert Run.objects.get(pk=run.pk).status == RunStatus.ROLLED_BACK


def test_api_schema_documents_console_endpoints(viewer):
    schema = _api(viewer).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    for path in (
        "/api/runs/",
        "/api/runs/{uuid}/pause/",
        "/api/runs/{uuid}/rollback/",
        "/api/runs/{uuid}/rollbacks/",
        "/api/failed-records/",
        "/api/failed-records/reprocess/",
        "/api/failed-records/ignore/",
    ):
        assert path in paths, path
    assert "patch" in paths["/api/failed-records/{uuid}/"]
    params = {p["name"] for p in paths["/api/failed-records/"]["get"]["parameters"]}
    assert {"run", "entity", "stage", "category", "status", "q", "cursor"} <= params
