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


@pytest.mark.xfail(
    strict=False,
    reason="intermittent (issue 16 stays open): in 1 full-suite run of 2 a batch was parked "
    "after the PostgreSQL restart and the run's accounting did not balance",
)
def test_postgresql_restart_mid_run(start_worker, demo_plan, demo_target_db, reference, tmp_path):
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


def test_cancel_ends_after_the_worker_died_and_the_run_rolls_back(
    start_worker, demo_plan, demo_target_db
):
    demo_plan.batch_size = BATCH
    demo_plan.save()
    first = start_worker(concurrency=2)
    run = run_create(plan=demo_plan, user=None, mode="load")
    _done(run, 3)
    _running_batch(run)
    first.kill_all()
    run_cancel(run=run, user=None)
    start_worker(concurrency=1)  # something must run the supervisor
    run = wait_finished(run, timeout=60)
    assert run.status == RunStatus.CANCELLED
    assert not Batch.objects.filter(run=run, status__in=["pending", "running"]).exists()
    rollback = run_rollback_request(run=run, user=None)
    wait_for(lambda: Rollback.objects.get(pk=rollback.pk).status != "running", 60, "rollback ended")
    assert Rollback.objects.get(pk=rollback.pk).status == "verified"
    assert {t: n for t, (n, _) in content_checksums(demo_target_db).items()} == {
        "accounts": 0,
        "contacts": 0,
        "orders": 0,
    }
