"""A rollback cancels its run's report: the report in flight stops (its running statement
cancelled) and is recorded as a cancelled attempt, never with a verdict; a report queued for a
run that is rolling back or rolled back does not start. The run's earlier report stays, as
history, superseded by the rollback. Real Celery worker, real PostgreSQL.

The report is held in flight without sleeping: the test locks the target's accounts table
(ACCESS EXCLUSIVE, in a transaction of its own), so the report's first statement over it
waits; the report must be cancelled while the lock is still held, i.e. without that
statement ever completing.
"""

from __future__ import annotations

import psycopg2
import pytest

from runs.enums import RollbackStatus, RunStatus
from runs.services import run_create, run_rollback_request
from runs.services.rollback import run_rollback_execute
from tests.runs.faults import wait_finished, wait_for
from tests.runs.test_runs_mysql_source import mysql_source  # noqa: F401 - a fixture
from tests.support import mysql, pg
from validation.models import RunReport, ValidationResult
from validation.services import run_reconcile_request
from validation.tasks import run_report_task

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.celery]
LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
)


def _attempt(run, reason: str) -> dict | None:
    """The run's report attempt cancelled by a rollback, recorded with ``reason``."""
    report = RunReport.objects.filter(run=run).first()
    return next((a for a in report.attempts if a["reason"] == reason), None) if report else None


def _lock_accounts(dbname: str):
    conn = psycopg2.connect(pg.url_for(dbname))
    cur = conn.cursor()
    cur.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")  # held until rollback()
    return conn


def test_a_rollback_cancels_the_report_in_flight_and_one_queued(
    start_worker, demo_plan, demo_target_db, client_for, viewer
):
    start_worker(concurrency=2)
    run = wait_finished(run_create(plan=demo_plan, user=None, mode="load"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    first = wait_for(lambda: RunReport.objects.filter(run=run).first(), 120, "first report")
    assert first.verdict in ("pass", "warn")
    posts = ValidationResult.objects.filter(run=run, rule__phase="post").count()

    lock = _lock_accounts(demo_target_db)
    try:
        run_reconcile_request(run=run, user=None, reason="in flight")
        wait_for(
            lambda: pg.query("postgres", LOCK_WAITERS, (demo_target_db,))[0][0] >= 1,
            60,
            "the report waiting for the accounts table",
        )
        rollback = run_rollback_request(run=run, user=None, enqueue=False)
        cancelled = wait_for(
            lambda: _attempt(run, "in flight"), 60, "the attempt recorded as cancelled"
        )
        # cancelled while the lock still holds: its statement never completed
        assert pg.query("postgres", LOCK_WAITERS, (demo_target_db,))[0][0] == 0
    finally:
        lock.rollback()
        lock.close()
    assert cancelled["message"] == f"superseded by rollback of run #{run.pk}"
    assert cancelled["progress"].get("entities diffed", 0) <= 1
    assert cancelled["progress"].get("post checks", 0) == 0
    # the earlier report stays as history (figures, post checks), superseded: never a pass
    report = RunReport.objects.get(run=run)
    assert (report.verdict, report.superseded_verdict) == ("superseded", first.verdict)
    assert report.data["computed"] == first.data["computed"]
    assert ValidationResult.objects.filter(run=run, rule__phase="post").count() == posts
    assert run.logs.filter(message__startswith="Report cancelled: superseded by rollback").exists()
    page = client_for(viewer).get(f"/runs/{run.uuid}/report/").content.decode()
    assert f"in flight: cancelled, superseded by rollback of run #{run.pk}" in page
    assert f"Superseded by rollback of run #{run.pk}" in page
    assert "verdict-pass" not in page and "verdict-warn" not in page

    assert run_rollback_execute(rollback_id=rollback.pk).status == RollbackStatus.VERIFIED
    run.refresh_from_db()
    assert run.status == RunStatus.ROLLED_BACK
    # a report queued for it (before the rollback, say) does not start: nothing is read
    run_report_task.delay(run.pk, "queued")
    queued = wait_for(lambda: _attempt(run, "queued"), 60, "the queued report's record")
    assert (queued["message"], queued["progress"]) == (
        f"superseded by rollback of run #{run.pk}",
        {},
    )
    assert RunReport.objects.get(run=run).verdict == "superseded"


def test_a_report_stops_at_its_next_key_range_once_its_run_is_rolling_back(
    start_worker,
    demo_plan,
    demo_target_db,
    mysql_source,  # noqa: F811 - the fixture imported above
):
    """Where no statement can be cancelled (a MySQL source read), the expected side stops at
    its next key range: the source table is locked so its first ranges wait; the rollback
    starts; once the watch said so the lock goes and the report ends cancelled with only the
    ranges it was reading done."""
    dbname, system = mysql_source
    demo_plan.source, demo_plan.batch_size = system, 25  # the report reads 25-row key ranges
    demo_plan.save()
    start_worker(concurrency=2)
    run = wait_finished(run_create(plan=demo_plan, user=None, mode="load"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    wait_for(lambda: RunReport.objects.filter(run=run).first(), 120, "first report")
    customers = mysql.raw(dbname)
    rows = customers.cursor()
    rows.execute("SELECT count(*) FROM customers")
    ranges = -(-rows.fetchone()[0] // 25)
    rows.execute("LOCK TABLES customers WRITE")
    try:
        run_reconcile_request(run=run, user=None, reason="in flight")
        wait_for(lambda: _waiting_on_lock(customers), 60, "the report waiting for customers")
        run_rollback_request(run=run, user=None, enqueue=False)
        wait_for(
            lambda: run.logs.filter(message__startswith="Report stopping: superseded").exists(),
            60,
            "the report's watch seeing the rollback",
        )
    finally:
        rows.execute("UNLOCK TABLES")
    cancelled = wait_for(
        lambda: _attempt(run, "in flight"), 60, "the attempt recorded as cancelled"
    )
    progress = cancelled["progress"]
    assert progress.get("expected ranges", 0) < ranges, (progress, ranges)
    assert RunReport.objects.get(run=run).verdict == "superseded"
    customers.close()


def _waiting_on_lock(conn) -> bool:
    cur = conn.cursor()
    cur.execute(
        "SELECT count(*) FROM information_schema.processlist WHERE state LIKE 'Waiting for table%%'"
    )
    return cur.fetchone()[0] >= 1
