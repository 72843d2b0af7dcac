"""A run's report keeps its history: a complete report that replaces the stored one (Reconcile
again, re-processing, a chain stopped before the run) moves the replaced one's verdict, when it
was computed, why and who asked into ``history`` (the last 20), shown on the report page (as
history: muted, never a live pass) and in the API. Real PostgreSQL, eager Celery."""
# ruff: noqa: F811 -- fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import pytest

from runs.enums import RollbackStatus
from runs.models import Rollback, Run
from runs.services.rollback import run_rollback_stack_request
from tests.runs.conftest import eager_celery, sync_plan  # noqa: F401
from tests.support import pg
from tests.support.runs import deltas_then_a_mismatch, run_finished
from validation.models import RunReport
from validation.report_build import run_report_build
from validation.report_history import HISTORY_KEEP
from validation.services import run_reconcile_request

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_reconcile_again_keeps_the_replaced_reports_verdict_time_reason_and_who_asked(
    sync_plan, eager_celery, operator, viewer, client_for
):
    plan, _src, tgt = sync_plan
    run = run_finished(plan, operator)
    first = RunReport.objects.get(run=run)
    assert first.verdict == "pass" and first.history == []
    assert first.data["computed"]["requested_by"] == "the system"
    pg.query(tgt, "UPDATE tgt SET name = 'edited' WHERE id = 7")
    run_reconcile_request(run=run, user=operator)  # eager: computed at once
    failed = RunReport.objects.get(run=run)
    assert failed.verdict == "fail"
    pg.query(tgt, "UPDATE tgt SET name = 'NAME 7' WHERE id = 7")
    run_reconcile_request(run=run, user=operator)

    report = RunReport.objects.get(run=run)
    assert report.verdict == "pass"
    assert [(h["verdict"], h["reason"], h["requested_by"]) for h in report.history] == [
        ("pass", "after the run", "the system"),
        ("fail", f"on demand by {operator.username}", operator.username),
    ]
    assert report.history[1]["computed_at"] == failed.data["computed"]["at"]
    assert report.history[1]["replaced_at"] >= report.data["computed"]["at"]  # when stored
    assert report.history[1]["replaced_by"] == f"on demand by {operator.username}"

    client = client_for(viewer)
    html = client.get(f"/runs/{run.uuid}/report/").content.decode()
    start = html.index('id="report-history"')
    part = html[start : html.index("</table>", start)]
    assert part.count("<tr") == 3  # a heading and the two replaced reports
    assert "fail" in part and f"on demand by {operator.username}" in part
    assert "verdict-pass" not in part and "status-passed" not in part  # history, muted
    api = client.get(f"/api/run-reports/{run.uuid}/").json()
    assert [h["verdict"] for h in api["history"]] == ["pass", "fail"]
    assert api["history"][1]["requested_by"] == operator.username


def test_the_history_keeps_the_last_twenty_replaced_reports(sync_plan, eager_celery, operator):
    plan, _src, _tgt = sync_plan
    run = run_finished(plan, operator)
    old = [{"verdict": "fail", "reason": f"old {i}"} for i in range(HISTORY_KEEP)]
    RunReport.objects.filter(run=run).update(history=old)

    report = run_report_build(run=run, reason="once more")

    assert HISTORY_KEEP == 20
    assert len(report.history) == HISTORY_KEEP
    assert report.history[0]["reason"] == "old 1"  # the oldest dropped
    assert (report.history[-1]["verdict"], report.history[-1]["reason"]) == (
        "pass",
        "after the run",
    )


def test_a_superseded_report_replaced_after_a_stopped_chain_stays_in_the_history(
    sync_plan, eager_celery, operator
):
    """The stack rollback of the first delta stops at the second (a mismatch): the first's
    report stays superseded; reconciling it again replaces it, and the history keeps it as
    superseded (was pass, by which rollback), with the attempts the rollback cancelled."""
    first, second = deltas_then_a_mismatch(*sync_plan, operator)
    run_rollback_stack_request(run=first, user=operator)
    head = Rollback.objects.get(run=second)
    assert head.status == RollbackStatus.MISMATCH
    superseded = RunReport.objects.get(run=first)
    assert superseded.verdict == "superseded"

    report = run_report_build(run=Run.objects.get(pk=first.pk), reason="after the chain stopped")

    assert report.verdict in ("pass", "fail")
    (entry,) = report.history
    assert (entry["verdict"], entry["superseded_verdict"]) == ("superseded", "pass")
    assert entry["superseded_reason"] == superseded.superseded_reason
    assert entry["computed_at"] == superseded.data["computed"]["at"]
    assert entry["replaced_by"] == "after the chain stopped"
