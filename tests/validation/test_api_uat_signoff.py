"""Issue 18 API parity, validation and runs side: UAT cases and results, sign-off, the audit
log, pre-validation, run comparison, top errors and notifications through the REST API, on a
real load run of the demo plan (PostgreSQL source and target)."""

from __future__ import annotations

import pytest

from runs.enums import RunStatus
from runs.models import Notification
from runs.services import run_create
from validation.models import SignOff, ValidationRule

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
JSON = "application/json"


@pytest.fixture
def loaded(eager_celery, demo_plan):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_uat_and_signoff_through_the_api(client, loaded, analyst, approver, viewer):
    plan, run = loaded.plan, loaded
    client.force_login(analyst)
    case = client.post(
        "/api/uat-cases/",
        {
            "plan": plan.slug,
            "title": "Names kept",
            "steps": "Open 10 accounts",
            "expected_result": "Same names",
        },
        content_type=JSON,
    )
    assert case.status_code == 201, case.content
    uuid = case.json()["uuid"]
    empty = client.post(
        "/api/uat-cases/",
        {"plan": plan.slug, "title": "x", "steps": "", "expected_result": "y"},
        content_type=JSON,
    )
    assert empty.status_code == 400 and "steps" in empty.json()
    result_url = f"/api/uat-cases/{uuid}/results/"
    assert (
        client.post(
            result_url, {"run": str(run.uuid), "outcome": "pass"}, content_type=JSON
        ).status_code
        == 403
    )  # analysts do not record UAT
    signoff = {"plan": plan.slug, "run": str(run.uuid), "decision": "approved"}
    assert client.post("/api/signoffs/", signoff, content_type=JSON).status_code == 403

    client.force_login(approver)
    fail = client.post(result_url, {"run": str(run.uuid), "outcome": "fail"}, content_type=JSON)
    assert fail.status_code == 400 and fail.json()["field"] == "comment"
    ok = client.post(result_url, {"run": str(run.uuid), "outcome": "pass"}, content_type=JSON)
    assert ok.status_code == 200 and ok.json()["tester"] == approver.username
    coverage = client.get(f"/api/uat-cases/coverage/?plan={plan.slug}&run={run.uuid}").json()
    # the demo plan brings its own cases: one of them now has a result, and it passes
    assert coverage["with_result"] == 1 and coverage["passing"] == 1
    assert coverage["cases"] == plan.uat_cases.count()
    reject = client.post("/api/signoffs/", {**signoff, "decision": "rejected"}, content_type=JSON)
    assert reject.status_code == 400 and reject.json()["field"] == "reason"
    made = client.post("/api/signoffs/", signoff, content_type=JSON)
    assert made.status_code == 201, made.content
    assert made.json()["version"] == run.version.number
    plan.refresh_from_db()
    assert plan.status == "signed_off"
    assert SignOff.objects.get().approver == approver

    client.force_login(viewer)
    listed = client.get(f"/api/signoffs/?plan={plan.slug}").json()["results"]
    assert [s["decision"] for s in listed] == ["approved"]
    audit = client.get(f"/api/audit-events/?action=sign_off&actor={approver.username}").json()
    assert audit["count"] == 1 and audit["results"][0]["after"]["decision"] == "approved"
    created = client.get("/api/audit-events/?action=create&type=validation.UATTestCase").json()
    assert created["count"] == 1 and created["results"][0]["actor"] == analyst.username
    bad_date = client.get("/api/audit-events/?from=yesterday")
    assert bad_date.status_code == 400 and bad_date.json()["field"] == "from"


def test_prevalidate_compare_top_errors_and_notifications(client, loaded, operator, approver):
    plan = loaded.plan
    rules = ValidationRule.objects.filter(plan=plan, phase="pre", enabled=True).count()
    assert rules > 0
    client.force_login(approver)
    body = {"plan": plan.slug}
    assert (
        client.post("/api/validation-rules/prevalidate/", body, content_type=JSON).status_code
        == 403
    )
    client.force_login(operator)
    results = client.post("/api/validation-rules/prevalidate/", body, content_type=JSON)
    assert results.status_code == 200, results.content
    assert len(results.json()) == rules
    assert {r["status"] for r in results.json()} <= {"passed", "warning", "failed", "error"}

    dry = run_create(plan=plan, user=None, mode="dry_run")
    dry.refresh_from_db()
    compared = client.get(f"/api/runs/compare/?a={loaded.uuid}&b={dry.uuid}")
    assert compared.status_code == 200, compared.content
    rows = {r["name"]: r for r in compared.json()["counters"]}
    assert rows["loaded"]["a"] == loaded.loaded and rows["loaded"]["b"] == dry.loaded
    assert rows["failed"]["delta"] == dry.failed - loaded.failed
    assert client.get("/api/runs/compare/?a=nope&b=x").status_code == 400

    top = client.get(f"/api/failed-records/top/?run={loaded.uuid}").json()
    assert sum(t["n"] for t in top) <= loaded.failed and top, "the demo data has dirty rows"
    assert top == sorted(top, key=lambda t: -t["n"])

    Notification.objects.all().delete()  # the runs above notified operators already
    Notification.objects.create(user=operator, run=loaded, message="Run finished")
    Notification.objects.create(user=approver, run=loaded, message="not yours")
    mine = client.get("/api/notifications/").json()["results"]
    assert [n["message"] for n in mine] == ["Run finished"]
    assert client.post("/api/notifications/read/", {}, content_type=JSON).json() == {"marked": 1}
    assert Notification.objects.filter(read_at__isnull=True).count() == 1
