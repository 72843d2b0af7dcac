"""Runs on real Celery worker processes, including a worker process killed mid-run."""

from __future__ import annotations

import os
import signal
import time

import pytest

from runs.enums import FINISHED_RUN_STATUSES, RunStatus
from runs.models import Batch, Run
from runs.services import run_create
from tests.support import pg

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.celery]


def _wait_finished(run: Run, timeout: float = 120) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in FINISHED_RUN_STATUSES:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run still {run.status} after {timeout}s")


def _duplicates(dbname: str, table: str, column: str) -> int:
    rows = pg.query(dbname, f'SELECT count(*) - count(DISTINCT "{column}") FROM "{table}"')
    return rows[0][0]


def test_run_on_two_worker_processes_balances(start_worker, demo_plan, demo_target_db):
    demo_plan.batch_size = 100
    demo_plan.save()
    start_worker(concurrency=2)
    run = _wait_finished(run_create(plan=demo_plan, user=None, mode="load"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    workers = set(Batch.objects.filter(run=run).values_list("worker", flat=True))
    assert len(workers) == 2  # both processes took batches
    target_rows = sum(
        pg.query(demo_target_db, f"SELECT count(*) FROM {t}")[0][0]
        for t in ("accounts", "contacts", "orders")
    )
    assert target_rows == run.loaded


def test_worker_killed_mid_run_loses_and_duplicates_nothing(
    start_worker, demo_plan, demo_target_db
):
    demo_plan.batch_size = 50
    demo_plan.save()
    worker = start_worker(concurrency=1)
    run = run_create(plan=demo_plan, user=None, mode="load")
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline:
        busy = Batch.objects.filter(run=run, status="running").exclude(worker="").first()
        if busy is not None:
            pid = int(busy.worker.rsplit(":", 1)[1])
            if pid != worker.proc.pid:
                os.kill(pid, signal.SIGKILL)
                killed = busy.pk
        time.sleep(0.01)
    assert killed is not None, "no batch was seen running"
    run = _wait_finished(run, timeout=180)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert Batch.objects.get(pk=killed).attempts >= 2
    accounts = pg.query(demo_target_db, "SELECT count(*) FROM accounts")[0][0]
    total = sum(
        pg.query(demo_target_db, f"SELECT count(*) FROM {t}")[0][0]
        for t in ("accounts", "contacts", "orders")
    )
    assert total == run.loaded
    assert accounts == sum(
        Batch.objects.filter(run=run, entity="accounts").values_list("loaded", flat=True)
    )
    assert _duplicates(demo_target_db, "accounts", "account_number") == 0
    assert _duplicates(demo_target_db, "contacts", "legacy_contact_id") == 0
    ledger = pg.query(
        demo_target_db,
        "SELECT count(*), count(DISTINCT (batch_id, target_key)) FROM mp_ledger.written",
    )
    assert ledger == [(total, total)]


def test_a_worker_keeps_its_database_connection_from_batch_to_batch(
    start_worker, demo_plan, demo_target_db
):
    """Celery closes Django's connections around every task unless told otherwise: each batch
    then paid a new backend of our database (fork, authentication, cold catalog caches: the
    bench's app backends, born and gone within a second, were missed by its per-process CPU).
    A worker's connection now outlives its tasks, like a web process's its requests."""
    from django.db import connection

    demo_plan.batch_size = 100
    demo_plan.save()
    start_worker(concurrency=1)
    run = _wait_finished(run_create(plan=demo_plan, user=None, mode="load"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    first = Batch.objects.filter(run=run).order_by("started_at").first().started_at
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_start < %s",
            [first],
        )
        (older,) = cursor.fetchone()
    assert older >= 1  # the worker's connection, opened before its first batch, still open
