"""The rollback's claim stays renewable while its final transaction works (10 M bench: the
lease renewal waited 60 s behind the supersede of 1.66 M failed records, long enough for the
supervisor to judge the worker dead). Real threads and sessions on the real database."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg2
import pytest
from django.db import connection

from runs.enums import FailedRecordStatus, RollbackStatus, RunStatus
from runs.models import FailedRecord, Rollback, Run
from runs.services import run_rollback_execute, run_rollback_request
from tests.runs.inline_runs import launch
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _app_connection():
    conn = psycopg2.connect(**{**pg.admin_params(), "dbname": connection.settings_dict["NAME"]})
    conn.autocommit = False
    return conn


@contextlib.contextmanager
def _record_locked(record: FailedRecord):
    """Another session holds one of the run's failed records: the final transaction's bulk
    supersede stops on it, with everything it locked before still held."""
    conn = _app_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM runs_failedrecord WHERE id = %s FOR UPDATE", (record.pk,))
        yield
    finally:
        conn.close()  # ends the transaction: the row is free


def _blocked_on_a_row(blocker_of: str) -> bool:
    """A session of the app database waits on a lock held by a session whose query is
    ``blocker_of`` (the test's own FOR UPDATE)."""
    return pg.query(
        connection.settings_dict["NAME"],
        "SELECT count(*) FROM pg_stat_activity w, unnest(pg_blocking_pids(w.pid)) b(pid) "
        "JOIN pg_stat_activity h ON h.pid = b.pid WHERE h.query LIKE %s",
        (f"%{blocker_of}%",),
    ) != [(0,)]


def _renew_now(rollback: Rollback) -> int:
    """The heartbeat's renewal (ClaimHeartbeat on ``mine``), from its own session, refusing to
    wait on a row lock: how many rows it renewed."""
    conn = _app_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = 0")
            cur.execute(
                "SELECT 1 FROM runs_rollback WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                (rollback.pk,),
            )
            cur.execute(
                "UPDATE runs_rollback SET lease_until = now() + interval '1 minute' "
                "WHERE id = %s AND status = %s AND attempts = %s",
                (rollback.pk, RollbackStatus.RUNNING, rollback.attempts),
            )
            renewed = cur.rowcount
        conn.commit()
        return renewed
    finally:
        conn.close()


def test_rollback_lease_renews_while_the_final_transaction_supersedes(eager_celery, demo_plan):
    run = launch(demo_plan)
    assert run.status == RunStatus.SUCCEEDED, run.error
    open_records = FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN)
    n_open = open_records.count()
    assert n_open > 0
    rollback = run_rollback_request(run=run, user=None, enqueue=False)
    results: list = []

    def execute() -> None:
        try:
            results.append(run_rollback_execute(rollback_id=rollback.pk))
        except Exception as exc:  # noqa: BLE001 - the test inspects what the thread got
            results.append(exc)
        finally:
            connection.close()

    with _record_locked(open_records.order_by("-pk").first()):
        worker = threading.Thread(target=execute)
        worker.start()
        for _ in range(600):  # the batches are undone, then the supersede waits on our row
            if _blocked_on_a_row("FOR UPDATE") or not worker.is_alive():
                break
            time.sleep(0.1)
        assert worker.is_alive(), results
        claimed = Rollback.objects.get(pk=rollback.pk)
        assert (claimed.status, claimed.attempts) == (RollbackStatus.RUNNING, 1)
        assert _renew_now(claimed) == 1  # the claim is renewable, without waiting
    worker.join(120)
    assert not worker.is_alive()
    (done,) = results
    assert isinstance(done, Rollback), done
    assert (done.status, done.lease_until, done.attempts) == (RollbackStatus.VERIFIED, None, 1)
    assert Run.objects.get(pk=run.pk).status == RunStatus.ROLLED_BACK
    assert FailedRecord.objects.filter(run=run, status=FailedRecordStatus.SUPERSEDED).count() == (
        n_open
    )
    assert not FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN).exists()


def test_rollback_handed_on_during_the_final_transaction_records_nothing(eager_celery, demo_plan):
    """The supervisor hands the claim on while the late original's final transaction
    supersedes: its verdict is refused and all of its bulk updates are rolled back with it."""
    from runs.services.rollback import _rollback_claim
    from runs.services.rollback_record import rollback_record as _record

    run = launch(demo_plan)
    open_records = FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN)
    n_open = open_records.count()
    rollback = run_rollback_request(run=run, user=None, enqueue=False)
    mine = _rollback_claim(rollback)
    results: list = []

    def record() -> None:
        try:
            results.append(_record(rollback, run, mine, {}, {}))
        finally:
            connection.close()

    with _record_locked(open_records.order_by("-pk").first()):
        late = threading.Thread(target=record)
        late.start()
        for _ in range(600):
            if _blocked_on_a_row("FOR UPDATE") or not late.is_alive():
                break
            time.sleep(0.1)
        assert late.is_alive(), results
        # the lease ran out: the supervisor gives the claim up, another attempt takes it
        assert Rollback.objects.filter(pk=rollback.pk).update(lease_until=None) == 1
        assert _rollback_claim(Rollback.objects.get(pk=rollback.pk)) is not None
    late.join(120)
    assert results == [False]
    assert Run.objects.get(pk=run.pk).status == RunStatus.ROLLING_BACK
    assert open_records.count() == n_open
    left = Rollback.objects.get(pk=rollback.pk)
    assert (left.status, left.attempts) == (RollbackStatus.RUNNING, 2)
