"""Cutover of a plan on real PostgreSQL (eager Celery): freeze, final delta, reconciliation,
report and sign-off checks, go with measured downtime in the audit log, and a no-go rolled
back in one request (everything since the last sign-off, newest first, verified)."""
# ruff: noqa: F811 -- fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import pytest

from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.enums import RunStatus
from runs.models import Rollback
from runs.services import run_create
from tests.runs.conftest import eager_celery, sync_plan  # noqa: F401
from tests.support import pg
from validation.cutover import (
    cutover_checklist,
    cutover_decide,
    cutover_freeze_confirm,
    cutover_open,
    cutover_rollback_request,
)
from validation.models import AuditEvent, RunReport
from validation.signoff import signoff_decide

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _signed_off_load(plan, operator, approver):
    load = run_create(plan=plan, user=operator, mode="load")
    load.refresh_from_db()
    assert load.status == RunStatus.SUCCEEDED, load.error
    signoff_decide(plan=plan, version=load.version, run=load, user=approver, decision="approved")
    return load


def _checks(cutover) -> dict[str, bool]:
    return {c.key: c.ok for c in cutover_checklist(cutover)}


def test_cutover_go_needs_every_check_and_records_downtime(
    sync_plan, eager_celery, operator, approver, analyst
):
    plan, src, tgt = sync_plan
    _signed_off_load(plan, operator, approver)
    with pytest.raises(PermissionDeniedError):
        cutover_open(plan=plan, user=analyst)
    cutover = cutover_open(plan=plan, user=operator)
    with pytest.raises(ApplicationError, match="Go refused, checks not passed: Source writes"):
        cutover_decide(cutover=cutover, user=operator, decision="go")
    pg.query(src, "UPDATE src SET name = 'late change' WHERE id <= 3")
    pg.query(src, "DELETE FROM src WHERE id > 395")
    cutover = cutover_freeze_confirm(cutover=cutover, user=operator)
    assert _checks(cutover) == {
        "freeze": True,
        "drained": False,
        "reconciled": False,
        "report": False,
        "signoff": False,
    }
    delta = run_create(plan=plan, user=operator, mode="delta")
    delta.refresh_from_db()
    assert (delta.status, delta.updated, delta.deleted) == (RunStatus.SUCCEEDED, 3, 5)
    assert RunReport.objects.get(run=delta).verdict != "fail"
    assert all(_checks(cutover).values()), cutover_checklist(cutover)
    cutover = cutover_decide(cutover=cutover, user=operator, decision="go")
    assert cutover.status == "go"
    assert cutover.downtime_seconds == int((cutover.decided_at - cutover.frozen_at).total_seconds())
    event = AuditEvent.objects.filter(action="cutover", after__step="decision").get()
    assert event.after["decision"] == "go" and len(event.after["checklist"]) == 5
    assert pg.query(tgt, "SELECT count(*) FROM tgt") == [(395,)]


def test_no_go_then_one_click_rollback_of_everything_since_signoff(
    sync_plan, eager_celery, operator, approver
):
    plan, src, tgt = sync_plan
    _signed_off_load(plan, operator, approver)
    signed = pg.query(tgt, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM tgt t")
    cutover = cutover_open(plan=plan, user=operator)
    cutover_freeze_confirm(cutover=cutover, user=operator)
    pg.query(src, "UPDATE src SET amount = amount + 1 WHERE id <= 10")
    pg.query(src, "DELETE FROM src WHERE id BETWEEN 20 AND 24")
    first = run_create(plan=plan, user=operator, mode="delta")
    pg.query(src, "INSERT INTO src VALUES (1001, 'added', 1)")
    second = run_create(plan=plan, user=operator, mode="delta")
    with pytest.raises(ApplicationError, match="A no-go needs a reason"):
        cutover_decide(cutover=cutover, user=operator, decision="no_go")
    cutover = cutover_decide(
        cutover=cutover,
        user=operator,
        decision="no_go",
        reason="reconciliation owner not reachable",
    )
    runs = cutover_rollback_request(cutover=cutover, user=operator)
    assert [r.pk for r in runs] == [second.pk, first.pk]  # newest first
    cutover.refresh_from_db()
    assert cutover.status == "rolled_back"
    assert [r["verdict"] for r in cutover.rolled_back_runs] == ["verified", "verified"]
    assert Rollback.objects.filter(run__in=[first, second], status="verified").count() == 2
    after = pg.query(tgt, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM tgt t")
    assert after == signed  # the target is back to what was signed off
    with pytest.raises(ApplicationError, match="Nothing was written since the last sign-off"):
        cutover_rollback_request(cutover=cutover, user=operator)


def test_cutover_api_checks_roles_and_refuses_go_with_the_failing_checks(
    sync_plan, eager_celery, operator, approver, analyst, client_for
):
    plan, _, _ = sync_plan
    _signed_off_load(plan, operator, approver)
    url = f"/api/cutovers/{plan.slug}/"
    assert client_for(analyst).post(url + "open/").status_code == 403
    opened = client_for(operator).post(url + "open/")
    assert (opened.status_code, opened.json()["status"]) == (201, "open")
    go = client_for(operator).post(
        url + "decide/", {"decision": "go"}, content_type="application/json"
    )
    assert go.status_code == 400
    assert "Source writes frozen (operator confirms)" in go.json()["detail"]
    frozen = client_for(operator).post(url + "freeze/").json()
    assert (frozen["checklist"][0]["key"], frozen["checklist"][0]["ok"]) == ("freeze", True)
    state = client_for(analyst).get(url).json()
    assert [c["key"] for c in state["checklist"] if not c["ok"]] == [
        "drained",
        "reconciled",
        "report",
        "signoff",
    ]
