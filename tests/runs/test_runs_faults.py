"""Fault tests with real processes: whatever is killed or restarted mid-run, the run ends
succeeded without a human (the supervisor on Celery beat), writes every row exactly once and
leaves the target with the same content as an undisturbed run. Lease 3 s, supervisor 1 s.
Each test appends its measured time to recover to artifacts/faults.jsonl (docs/operations.md)."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time
from urllib.parse import urlparse

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.db import connection

from runs.enums import BatchStatus, RunStatus
from runs.models import Batch, Rollback, Run
from runs.services import run_cancel, run_create, run_rollback_request
from runs.services.broker import broker_view
from tests.runs.conftest import ROOT, _pg_system, _worker_env
from tests.runs.faults import (
    assert_exact,
    content_checksums,
    record_recovery,
    wait_finished,
    wait_for,
)
from tests.support import pg

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.celery,
    pytest.mark.faults,
]
BATCH = 50  # 300 customers, 600 contacts, 900 orders: 36 batches
_REFERENCE: dict[str, dict] = {}


@pytest.fixture
def reference(demo_plan):
    """Target content after an undisturbed run of the same plan version (in-process, once)."""
    from mappings.demo import legacy_crm

    demo_plan.batch_size = BATCH
    demo_plan.save()
    key = f"{BATCH}"
    if key not in _REFERENCE:
        conf = current_app.conf
        saved = conf.task_always_eager, conf.task_eager_propagates
        with pg.throwaway_database("runs_ref") as name:
            legacy_crm.build_target(pg.url_for(name))
            target = _pg_system("Reference CRM", name, "uat", "target")
            conf.task_always_eager = conf.task_eager_propagates = True
            try:
                run = run_create(plan=demo_plan, user=None, target=target, mode="load")
            finally:
                conf.task_always_eager, conf.task_eager_propagates = saved
            run.refresh_from_db()
            assert run.status == RunStatus.SUCCEEDED, run.error
            _REFERENCE[key] = content_checksums(name)
            from runs.connections import connectors_close

            connectors_close()
    return _REFERENCE[key]


def _running_batch(run: Run) -> Batch:
    return wait_for(
        lambda: Batch.objects.filter(run=run, status="running").exclude(worker="").first(),
        60,
        "a running batch",
        step=0.01,
    )


def _done(run: Run, n: int) -> None:
    wait_for(lambda: Batch.objects.filter(run=run, status="done").count() >= n, 90, f"{n} done")


def test_kill_9_of_a_worker_child(start_worker, demo_plan, demo_target_db, reference):
    worker = start_worker(concurrency=1)
    run = run_create(plan=demo_plan, user=None, mode="load")
    busy = wait_for(
        lambda: (
            Batch.objects.filter(run=run, status=BatchStatus.RUNNING)
            .exclude(worker="")
            .exclude(worker__endswith=f":{worker.proc.pid}")
            .first()
        ),
        60,
        "a batch running in a pool child",
        step=0.01,
    )
    os.kill(int(busy.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: Batch.objects.get(pk=busy.pk).status == "done", 120, "killed batch redone")
    recovered = time.monotonic() - killed_at
    run = wait_finished(run)
    record_recovery("kill -9 of a worker child", recovered, run_end_s=time.monotonic() - killed_at)
    assert Batch.objects.get(pk=busy.pk).attempts >= 2
    assert_exact(run, demo_target_db, reference)


def test_kill_9_of_the_whole_worker_then_a_new_one(
    start_worker, demo_plan, demo_target_db, reference
):
    first = start_worker(concurrency=2)
    run = run_create(plan=demo_plan, user=None, mode="load")
    _done(run, 3)
    busy = _running_batch(run)
    first.kill_all()
    killed_at = time.monotonic()
    start_worker(concurrency=2)
    wait_for(lambda: Batch.objects.get(pk=busy.pk).status == "done", 120, "lost batch redone")
    recovered = time.monotonic() - killed_at
    run = wait_finished(run)
    ended = time.monotonic() - killed_at
    record_recovery("kill -9 of the whole worker", recovered, run_end_s=ended)
    assert Batch.objects.get(pk=busy.pk).attempts >= 2
    assert_exact(run, demo_target_db, reference)


def _redis_restart() -> None:
    """SHUTDOWN NOSAVE of the suite's Redis (every message lost), then the same server again
    on the same port (scripts/lib.sh stops it at the end of the suite)."""
    url = urlparse(settings.CELERY_BROKER_URL)
    client = redis.Redis(host=url.hostname, port=url.port)
    folder = client.config_get("dir")["dir"]
    with contextlib.suppress(redis.ConnectionError):
        client.shutdown(nosave=True)
    wait_for(lambda: _redis_down(url), 10, "Redis down")
    # S603: fixed argv, our own server binary and loopback port
    subprocess.Popen(  # noqa: S603
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(url.port),
            "--daemonize",
            "no",
            "--dir",
            folder,
            "--logfile",
            os.path.join(folder, "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: not _redis_down(url), 10, "Redis back")


def _redis_down(url) -> bool:
    try:
        redis.Redis(host=url.hostname, port=url.port, socket_connect_timeout=0.5).ping()
    except redis.ConnectionError:
        return True
    return False


def test_redis_shutdown_nosave_and_restart(start_worker, demo_plan, demo_target_db, reference):
    start_worker(concurrency=2)
    run = run_create(plan=demo_plan, user=None, mode="load")
    _done(run, 4)
    assert Batch.objects.filter(run=run, status="pending").exists()
    _redis_restart()
    restarted_at = time.monotonic()
    done_then = Batch.objects.filter(run=run, status="done").count()
    wait_for(
        lambda: Batch.objects.filter(run=run, status="done").count() > done_then + 1,
        120,
        "batches done after the restart",
    )
    recovered = time.monotonic() - restarted_at
    run = wait_finished(run)
    record_recovery(
        "Redis SHUTDOWN NOSAVE + restart", recovered, run_end_s=time.monotonic() - restarted_at
    )
    assert_exact(run, demo_target_db, reference)


def _pg_restart(log) -> None:
    with connection.cursor() as cur:
        cur.execute("SHOW data_directory")
        data = cur.fetchone()[0]
    pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
    runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    # S603: fixed argv: the suite's own cluster, found through its data directory
    subprocess.run(  # noqa: S603
        [*runner, pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "60", "restart"],
        stdout=log,
        stderr=subprocess.STDOUT,
        check=True,
        cwd="/",
    )
    connection.close()


def test_postgresql_restart_mid_run(start_worker, demo_plan, demo_target_db, reference, tmp_path):
    """Our database and the target (one cluster) restart while batches run: every error of the
    restart is transient (the batch goes back to pending and is retried); none counts as a
    lost worker, so no batch is parked, and nothing is written twice."""
    start_worker(concurrency=2)
    run = run_create(plan=demo_plan, user=None, mode="load")
    _done(run, 4)
    with (tmp_path / "pg-restart.log").open("wb") as log:
        started = time.monotonic()
        _pg_restart(log)
    restarted_at = time.monotonic()
    run = wait_finished(run)
    record_recovery(
        "PostgreSQL (app + target) restart",
        restarted_at - started,
        run_end_s=time.monotonic() - restarted_at,
    )
    assert_exact(run, demo_target_db, reference)
    assert not Batch.objects.filter(run=run, lost_attempts__gte=2).exists()


LAUNCH_AND_DIE = textwrap.dedent(
    """
    import os, signal, django
    django.setup()
    from django.db import transaction
    from mappings.models import Plan
    from runs.services import run_create
    with transaction.atomic():
        # Registered first, so it runs first after COMMIT: the web process dies before the
        # run's start message is sent.
        transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
        run = run_create(plan=Plan.objects.get(pk={plan}), user=None, mode="load")
        print(run.pk, flush=True)
    """
)


def test_web_killed_while_launching(start_worker, demo_plan, demo_target_db, reference):
    start_worker(concurrency=2)
    # S603: our own interpreter running our own code
    web = subprocess.run(  # noqa: S603
        [sys.executable, "-c", LAUNCH_AND_DIE.replace("{plan}", str(demo_plan.pk))],
        env={**_worker_env(), "DJANGO_SETTINGS_MODULE": "migration_planner.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert web.returncode == -signal.SIGKILL, web.stderr[-2000:]
    killed_at = time.monotonic()
    run = Run.objects.get(pk=int(web.stdout.split()[0]))
    assert run.status == RunStatus.QUEUED
    view = broker_view()
    assert view is not None and not view.holds("runs.run_start", run.pk)
    run = wait_finished(run)
    record_recovery("web killed between commit and enqueue", time.monotonic() - killed_at)
    assert_exact(run, demo_target_db, reference)


def _seed_accounts(source_db: str, target_db: str, every: int = 10) -> None:
    """Accounts already in the target that the run will upsert over: rolling back must put
    their before-images back. Every tenth customer, so each batch of customers holds some
    whichever batches ran before the kill (the first batch need not be among them)."""
    ids = [r[0] for r in pg.query(source_db, 'SELECT "Customer_ID" FROM customers ORDER BY 1')]
    for customer_id in ids[::every]:
        pg.query(
            target_db,
            "INSERT INTO accounts (account_number, name, account_status) "
            "VALUES (%s, 'Before the run', 'Prospect')",
            (str(customer_id),),
        )


@contextlib.contextmanager
def _batch_locked(target_db: str, run: Run, batch_id: str):
    """Hold the target's advisory lock of one ledger batch (the one its undo takes first), so
    a rollback stops there with the newer batches already undone."""
    import psycopg2

    conn = psycopg2.connect(**{**pg.admin_params(), "dbname": target_db})
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"mp_ledger.batch\x1f{run.uuid}\x1f{batch_id}",),
            )
            yield
    finally:
        conn.close()  # ends the transaction: the lock is released


def _waiting_on_a_lock(target_db: str) -> bool:
    return pg.query(
        target_db,
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted",
    ) == [(1,)]


def test_cancel_and_rollback_end_after_their_worker_died(
    start_worker, demo_plan, demo_source_db, demo_target_db
):
    """kill -9 of the whole worker mid-run, then cancel: the run ends cancelled; then kill -9
    of the worker mid-rollback: the supervisor re-queues the rollback (its lease expired), a new
    worker finishes it, every batch undone once, and the target is back to its pre-run content."""
    _seed_accounts(demo_source_db, demo_target_db)
    before_run = content_checksums(demo_target_db)
    demo_plan.batch_size = BATCH
    demo_plan.save()
    first = start_worker(concurrency=2)
    run = run_create(plan=demo_plan, user=None, mode="load")
    _done(run, 3)
    _running_batch(run)
    first.kill_all()
    run_cancel(run=run, user=None)
    second = start_worker(concurrency=1)  # something must run the supervisor
    run = wait_finished(run, timeout=60)
    assert run.status == RunStatus.CANCELLED
    assert not Batch.objects.filter(run=run, status__in=["pending", "running"]).exists()
    ledger = [
        r[0]
        for r in pg.query(
            demo_target_db,
            "SELECT batch_id FROM mp_ledger.batch WHERE run_id = %s ORDER BY committed_at, seq",
            (str(run.uuid),),
        )
    ]
    written = dict(
        pg.query(demo_target_db, "SELECT action, count(*) FROM mp_ledger.written GROUP BY 1")
    )
    assert len(ledger) >= 3
    with _batch_locked(demo_target_db, run, ledger[-2]):
        rollback = run_rollback_request(run=run, user=None)
        wait_for(lambda: _waiting_on_a_lock(demo_target_db), 60, "the rollback at the lock")
        second.kill_all()
    killed_at = time.monotonic()
    start_worker(concurrency=1)
    wait_for(lambda: Rollback.objects.get(pk=rollback.pk).status != "running", 90, "rollback end")
    record_recovery("kill -9 of the worker during a rollback", time.monotonic() - killed_at)
    rollback.refresh_from_db()
    run.refresh_from_db()
    assert (rollback.status, run.status) == ("verified", RunStatus.ROLLED_BACK), rollback.error
    assert rollback.attempts >= 2
    # each batch undone once over both attempts: the counts are the target ledger's own
    assert rollback.batches_undone == len(ledger)
    assert (rollback.rows_deleted, rollback.rows_restored) == (
        written.get("insert", 0),
        written.get("update", 0),
    )
    assert written.get("update", 0) > 0  # the seeded accounts were overwritten, then restored
    assert content_checksums(demo_target_db) == before_run  # before-images back, nothing more
    assert pg.query(demo_target_db, "SELECT count(*) FROM mp_ledger.written") == [(0,)]
