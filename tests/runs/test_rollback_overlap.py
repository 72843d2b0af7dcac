"""The rollback's final transaction begins before the target is undone (10 M bench: the target's
DELETEs 57.7 s, then the supersede of 1.66 M failed records 48.7 s, one after the other): the
failed records are superseded, uncommitted, while the batches are undone, and committed only
with the verdict; an undo that fails leaves them as they were. Real threads and sessions."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from runs.engine.errors import EngineError
from runs.enums import FailedRecordStatus, RollbackStatus, RunStatus
from runs.models import FailedRecord, Run
from runs.services import rollback as rollback_service
from runs.services import run_rollback_execute, run_rollback_request
from tests.runs.inline_runs import launch
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SUPERSEDE = 'UPDATE "runs_failedrecord" SET "status" = %'


def _supersede_uncommitted() -> bool:
    """Another session of the app database has run the supersede in a transaction still open
    (waited for up to 30 s: that session starts it on its own)."""
    for _ in range(300):
        found = pg.query(
            connection.settings_dict["NAME"],
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND query LIKE %s",
            (SUPERSEDE,),
        )
        if found != [(0,)]:
            return True
        time.sleep(0.1)
    return False


def _watch_progress(monkeypatch, seen: list, fail: bool = False) -> None:
    """At each batch undone, note whether the supersede is under way (and maybe fail)."""
    real = rollback_service._progress

    def progress(rollback, run, mine, result):
        if not seen:
            seen.append(_supersede_uncommitted())
        if fail:
            raise EngineError("the target refused the undo (test)")
        return real(rollback, run, mine, result)

    monkeypatch.setattr(rollback_service, "_progress", progress)


def test_rollback_supersedes_the_failed_records_while_the_target_is_undone(
    eager_celery, demo_plan, monkeypatch
):
    run = launch(demo_plan)
    assert run.status == RunStatus.SUCCEEDED, run.error
    n_open = FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN).count()
    assert n_open > 0
    seen: list[bool] = []
    _watch_progress(monkeypatch, seen)
    rollback = run_rollback_request(run=run, user=None, enqueue=False)
    done = run_rollback_execute(rollback_id=rollback.pk)
    assert done.status == RollbackStatus.VERIFIED, done.error
    assert seen and seen[0] is True  # the first batch undone: the supersede already ran
    assert Run.objects.get(pk=run.pk).status == RunStatus.ROLLED_BACK
    assert FailedRecord.objects.filter(run=run, status=FailedRecordStatus.SUPERSEDED).count() == (
        n_open
    )
    assert f"{n_open:,} failed record(s) superseded" in " ".join(
        run.logs.values_list("message", flat=True)
    )


def test_a_failed_undo_leaves_the_failed_records_open(eager_celery, demo_plan, monkeypatch):
    run = launch(demo_plan)
    n_open = FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN).count()
    seen: list[bool] = []
    _watch_progress(monkeypatch, seen, fail=True)
    rollback = run_rollback_request(run=run, user=None, enqueue=False)
    done = run_rollback_execute(rollback_id=rollback.pk)
    assert done.status == RollbackStatus.FAILED
    assert seen == [True]
    assert FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN).count() == n_open
    assert not FailedRecord.objects.filter(run=run, status=FailedRecordStatus.SUPERSEDED).exists()
    assert not _supersede_open_now()


def _supersede_open_now() -> bool:
    """A session still holds the supersede's transaction open (it must have ended)."""
    return pg.query(
        connection.settings_dict["NAME"],
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND query LIKE %s",
        (SUPERSEDE,),
    ) != [(0,)]


def test_a_failed_undo_does_not_wait_behind_a_record_another_session_holds(
    eager_celery, demo_plan, monkeypatch
):
    """The early supersede waits on a record another session has locked; the undo fails
    meanwhile: the rollback ends failed at once (the supersede is cancelled), not when the
    other session lets the record go."""
    import threading

    import psycopg2

    run = launch(demo_plan)
    records = FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN)
    n_open = records.count()
    holder = psycopg2.connect(**{**pg.admin_params(), "dbname": connection.settings_dict["NAME"]})
    try:
        with holder.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM runs_failedrecord WHERE id = %s FOR UPDATE",
                (records.order_by("-pk").first().pk,),
            )

        def fail(rollback, run, mine, result):
            raise EngineError("the target refused the undo (test)")

        monkeypatch.setattr(rollback_service, "_progress", fail)
        rollback = run_rollback_request(run=run, user=None, enqueue=False)
        results: list = []

        def execute() -> None:
            try:
                results.append(run_rollback_execute(rollback_id=rollback.pk))
            finally:
                connection.close()

        worker = threading.Thread(target=execute)
        worker.start()
        worker.join(60)  # the other session still holds the record
        assert not worker.is_alive()
        assert results[0].status == RollbackStatus.FAILED
    finally:
        holder.close()
    assert records.count() == n_open
