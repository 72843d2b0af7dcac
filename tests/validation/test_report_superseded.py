"""A rollback supersedes its runs' completed reports: the figures stay as history, the verdict
shows "superseded by rollback of run #N" (who, when) and never counts as a pass again (pages,
API, cutover, sign-off). A cancelled report attempt never replaces a completed report. A
rollback that starts while a finished report waits to be stored is caught by the run's row
lock. Real PostgreSQL, eager Celery."""
# ruff: noqa: F811 -- fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from runs.enums import RollbackStatus, RunStatus
from runs.models import Rollback, Run
from runs.services import run_rollback_request
from runs.services.rollback import run_rollback_execute, run_rollback_stack_request
from tests.runs.conftest import eager_celery, sync_plan  # noqa: F401
from tests.support import pg
from tests.support.runs import run_finished
from validation.cutover import cutover_checklist, cutover_freeze_confirm, cutover_open
from validation.models import RunReport, ValidationResult
from validation.report_build import run_report_build
from validation.signoff import signoff_concerns, signoff_decide

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
STORE_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query LIKE '%%FOR UPDATE%%'"
)


def test_a_rollback_supersedes_the_runs_completed_report_everywhere(
    eager_celery, demo_plan, operator, viewer, client_for
):
    run = run_finished(demo_plan, operator)
    before = RunReport.objects.get(run=run)
    assert before.verdict in ("pass", "warn")
    rollback = run_rollback_request(run=run, user=operator, enqueue=False)

    report = RunReport.objects.get(run=run)
    assert (report.verdict, report.superseded_verdict) == ("superseded", before.verdict)
    assert report.superseded_by == rollback
    assert report.superseded_reason == f"superseded by rollback of run #{run.pk}"
    assert report.superseded_at is not None
    assert report.data["key_diffs"] == before.data["key_diffs"]  # the figures, as history
    client = client_for(viewer)
    page = client.get(f"/runs/{run.uuid}/report/").content.decode()
    assert f"Superseded by rollback of run #{run.pk}" in page
    assert f"requested by {operator.username}" in page
    assert "verdict-pass" not in page and "verdict-warn" not in page
    for listing in ("/", demo_plan.get_absolute_url()):  # the dashboard, the plan's runs
        html = client.get(listing).content.decode()
        assert "⟲ superseded" in html and "✔ pass" not in html and "▲ warn" not in html
    csv_text = client.get(f"/runs/{run.uuid}/report/export/csv/").content.decode()
    assert csv_text.splitlines()[1] == (
        f"verdict,,the report,,superseded,was {before.verdict},"
        f"superseded by rollback of run #{run.pk}"
    )
    api = client.get(f"/api/run-reports/{run.uuid}/").json()
    assert (api["verdict"], api["superseded_verdict"]) == ("superseded", before.verdict)
    assert api["superseded_reason"] == f"superseded by rollback of run #{run.pk}"
    assert api["superseded_by"] == {"run": str(run.uuid), "requested_by": operator.username}

    assert run_rollback_execute(rollback_id=rollback.pk).status == RollbackStatus.VERIFIED
    report.refresh_from_db()
    assert (report.verdict, report.superseded_by) == ("superseded", rollback)


def test_a_cancelled_attempt_keeps_the_earlier_report_as_history(
    eager_celery, demo_plan, operator, viewer, client_for
):
    run = run_finished(demo_plan, operator)
    before = RunReport.objects.get(run=run)
    posts = ValidationResult.objects.filter(run=run, rule__phase="post").count()
    rollback = run_rollback_request(run=run, user=operator, enqueue=False)

    report = run_report_build(run=run, reason="after the rollback")

    assert report.pk == before.pk
    assert (report.verdict, report.superseded_verdict) == ("superseded", before.verdict)
    assert report.data["key_diffs"] == before.data["key_diffs"]
    assert report.data["computed"] == before.data["computed"]
    assert report.created_at == before.created_at
    assert [(a["reason"], a["message"]) for a in report.attempts] == [
        ("after the rollback", f"superseded by rollback of run #{run.pk}")
    ]
    assert ValidationResult.objects.filter(run=run, rule__phase="post").count() == posts
    page = client_for(viewer).get(f"/runs/{run.uuid}/report/").content.decode()
    assert f"Superseded by rollback of run #{run.pk}" in page
    assert "Cancelled attempt" in page and "after the rollback" in page
    assert report.superseded_by == rollback


def test_a_chained_rollback_supersedes_the_older_runs_report_and_the_cutover_sees_it(
    sync_plan, eager_celery, operator, approver
):
    """The stack rollback of the first delta rolls back the second first (chain: the first);
    the second's rollback finds a mismatch, so the chain stops and the first delta stays
    'succeeded': its report was superseded when the chain started and no gate counts it."""
    plan, src, tgt = sync_plan
    load = run_finished(plan, operator)
    signoff_decide(plan=plan, version=load.version, run=load, user=approver, decision="approved")
    cutover = cutover_open(plan=plan, user=operator)
    cutover = cutover_freeze_confirm(cutover=cutover, user=operator)
    pg.query(src, "UPDATE src SET amount = amount + 1 WHERE id <= 10")
    first = run_finished(plan, operator, mode="delta")
    checks = {c.key: c.ok for c in cutover_checklist(cutover)}
    assert (checks["reconciled"], checks["report"]) == (True, True), cutover_checklist(cutover)
    pg.query(src, "UPDATE src SET amount = amount + 1 WHERE id <= 10")
    second = run_finished(plan, operator, mode="delta")
    pg.query(tgt, "UPDATE tgt SET name = 'edited after' WHERE id = 300")  # a mismatch

    run_rollback_stack_request(run=first, user=operator)

    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED
    head = Rollback.objects.get(run=second)
    assert (head.status, head.chain) == (RollbackStatus.MISMATCH, [first.pk])
    report = RunReport.objects.get(run=first)
    assert (report.verdict, report.superseded_by) == ("superseded", head)
    assert report.superseded_reason == (
        f"superseded by rollback of run #{second.pk}, which rolls back run #{first.pk} next"
    )
    items = {c.key: c for c in cutover_checklist(cutover)}
    assert (items["reconciled"].ok, items["report"].ok) == (False, False)
    assert f"rollback of run #{second.pk}" in items["report"].detail
    assert any("superseded" in c for c in signoff_concerns(first))


def test_a_rollback_between_the_reports_last_checkpoint_and_its_store_gets_no_verdict(
    eager_celery, demo_plan, operator
):
    """The test holds the run's row (as a rollback request does) while the report computes:
    the report passes every checkpoint and waits for the row to store its verdict; the
    rollback is requested in that same transaction and commits; the report then finds the
    run rolling back under the lock and stores no verdict (its attempt is recorded)."""
    run = run_finished(demo_plan, operator)
    before = RunReport.objects.get(run=run)
    outcome: dict = {}

    def report() -> None:
        try:
            outcome["report"] = run_report_build(run=Run.objects.get(pk=run.pk), reason="racing")
        except Exception as exc:  # noqa: BLE001 - the test reports it below
            outcome["error"] = exc
        finally:
            connection.close()

    with transaction.atomic():
        list(Run.objects.select_for_update().filter(pk=run.pk))
        thread = threading.Thread(target=report)
        thread.start()
        _wait(lambda: _store_waiters() >= 1 or not thread.is_alive())
        assert thread.is_alive(), outcome  # waiting for the row, past its last checkpoint
        rollback = run_rollback_request(run=run, user=operator, enqueue=False)
    thread.join(120)

    assert "error" not in outcome, outcome
    report = RunReport.objects.get(run=run)
    assert (report.pk, report.verdict, report.superseded_by) == (before.pk, "superseded", rollback)
    assert report.data["computed"] == before.data["computed"]  # the racing figures not stored
    (attempt,) = report.attempts
    assert attempt["reason"] == "racing"
    assert attempt["message"] == f"superseded by rollback of run #{run.pk}"
    assert attempt["progress"]["entities diffed"] == len(report.data["key_diffs"])


def _store_waiters() -> int:
    with connection.cursor() as cur:
        # inside a transaction the statistics are a snapshot taken at their first read
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(STORE_WAITERS)
        return cur.fetchone()[0]


def _wait(condition, attempts: int = 1200) -> None:
    """Poll ``condition`` (at most ~120 s); the test asserts on what it finds, not on time."""
    import time

    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.1)


def test_migration_0009_restores_the_verdict_going_back_and_supersedes_going_forward(
    eager_celery, demo_plan, operator
):
    """Migration 0009 on real data: back to 0008 a superseded report gets the verdict it had;
    forward again, the report of a run already rolled back is superseded by its rollback."""
    from django.db.migrations.executor import MigrationExecutor

    run = run_finished(demo_plan, operator)
    verdict = RunReport.objects.get(run=run).verdict
    rollback = run_rollback_request(run=run, user=operator, enqueue=False)
    run_rollback_execute(rollback_id=rollback.pk)

    def migrate(name: str) -> None:
        executor = MigrationExecutor(connection)
        executor.migrate([("validation", name)])

    def stored() -> list[tuple]:
        with connection.cursor() as cur:
            cur.execute("SELECT verdict FROM validation_runreport WHERE run_id = %s", [run.pk])
            return cur.fetchall()

    try:
        migrate("0008_report_verdict_cancelled")
        assert stored() == [(verdict,)]
    finally:  # forward through 0009 to the newest migration (the later tests need it)
        migrate("0009_report_superseded")
        (leaf,) = MigrationExecutor(connection).loader.graph.leaf_nodes("validation")
        migrate(leaf[1])
    report = RunReport.objects.get(run=run)
    assert (report.verdict, report.superseded_verdict) == ("superseded", verdict)
    assert (report.superseded_by, report.superseded_at) == (rollback, rollback.started_at)
    assert report.superseded_reason == f"superseded by rollback of run #{run.pk}"
