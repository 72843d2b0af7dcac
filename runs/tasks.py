"""Thin Celery entry points: take ids, call one service, log."""

from __future__ import annotations

import gc
import logging
import os
import socket

from celery import shared_task
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)
from django.db import close_old_connections

from migration_planner.lib.memory import release_memory
from runs.engine.errors import is_unavailable

from . import services

logger = logging.getLogger(__name__)


@worker_process_init.connect
def load_engine(**_: object) -> None:
    """In each pool child as it starts: import the engine (pandas, pyarrow: ~0.3 s of CPU),
    so that a run's first batches do not pay it, then freeze what start-up made (~117,000
    objects) out of the garbage collector's sight: the full collection after each batch then
    takes ~1 ms instead of ~50 ms. The parent process stays without pandas/pyarrow."""
    import runs.engine.batch  # noqa: F401

    gc.collect()
    gc.freeze()


_beat: list = []


@worker_ready.connect
def start_heartbeat(sender=None, **_: object) -> None:
    """In the worker's parent process, once it consumes: report it alive every few seconds."""
    from .services.workers import WorkerBeat

    pool = getattr(sender.controller, "concurrency", 0) if sender is not None else 0
    beat = WorkerBeat(
        name=getattr(sender, "hostname", None) or f"celery@{socket.gethostname()}",
        hostname=socket.gethostname(),
        pid=os.getpid(),
        concurrency=int(pool or 0),
    )
    beat.start()
    _beat.append(beat)


@worker_shutdown.connect
def stop_heartbeat(**_: object) -> None:
    """A clean shutdown says so (a killed worker just stops beating)."""
    from .services.workers import worker_stopped

    for beat in _beat:
        beat.stop.set()
        worker_stopped(name=beat.identity["name"])


@task_prerun.connect
@task_postrun.connect
def connections_like_a_request(task: object = None, **_: object) -> None:
    """Before and after every task (not an eager one: it runs inside its caller's
    transaction), close the database connections Django would close after a request: past
    CONN_MAX_AGE, or unusable after an error. The others serve the next task
    (``CELERY_DB_REUSE_MAX``: Celery's own closing of every connection is off)."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    close_old_connections()


@task_postrun.connect
def release_after_task(**_: object) -> None:
    """After every task: collect cycles (cheap: start-up objects are frozen) and give the
    freed memory back to the OS."""
    release_memory()


# Retries of a task that met an unavailable database (ours, a source, a target): back-off
# 1, 2, 4, 8, 16, 30, 30, 30 s; after that the supervisor's lease and lost-message rules take
# over (the work is pending, queued or its lease runs out: it is queued again).
RETRIES = 8


def _unavailable(task, exc: BaseException) -> bool:
    """True (and our connection closed) when ``exc`` is a database outage worth a retry."""
    if not is_unavailable(exc) or task.request.retries >= RETRIES:
        return False
    from django.db import connection

    connection.close()
    return True


def _backoff(task) -> int:
    return min(2**task.request.retries, 30)


@shared_task(name="runs.run_start", bind=True, acks_late=True, time_limit=3600, max_retries=None)
def run_start(self, run_id: int) -> None:
    """Plan the run's batches and queue the first entity's; retries an unavailable database."""
    try:
        services.run_prepare(run_id=run_id)
    except Exception as exc:
        if not _unavailable(self, exc):
            raise
        raise self.retry(exc=exc, countdown=_backoff(self)) from None


@shared_task(
    name="runs.batch_execute",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=3600,
    soft_time_limit=3500,
    max_retries=None,
)
def batch_execute_task(self, batch_id: int) -> str:
    """Execute one batch; retries only an unavailable database and live-claim waits."""
    try:
        result = services.batch_execute(batch_id=batch_id)
    except services.BatchBusy as busy:
        raise self.retry(countdown=busy.seconds) from None
    except Exception as exc:
        if not _unavailable(self, exc):
            raise
        raise self.retry(exc=exc, countdown=_backoff(self)) from None
    logger.info("batch %s: %s", batch_id, result)
    return result


@shared_task(
    name="runs.cdc_sync",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def cdc_sync_task(self, run_id: int) -> None:
    """Drive a sync run (full load + CDC) under its lease until it drains; an unavailable
    database retries, resuming from the target's checkpoint; a duplicate message while
    another worker drives it does nothing."""
    try:
        services.sync_drive(run_id=run_id)
    except services.SyncBusy as busy:
        logger.info("sync run %s: %s; message dropped", run_id, busy)
    except Exception as exc:
        if not _unavailable(self, exc):
            raise
        raise self.retry(exc=exc, countdown=_backoff(self)) from None


@shared_task(
    name="runs.run_rollback",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=3600,
    max_retries=None,
)
def run_rollback_task(self, rollback_id: int) -> None:
    """Undo a run from the ledger and verify the checksums (under the rollback's lease);
    retries an unavailable database."""
    try:
        services.run_rollback_execute(rollback_id=rollback_id)
    except Exception as exc:
        if not _unavailable(self, exc):
            raise
        raise self.retry(exc=exc, countdown=_backoff(self)) from None


@shared_task(name="runs.failed_records_reprocess", acks_late=True, time_limit=3600)
def failed_records_reprocess_task(record_ids: list[int], user_id: int | None) -> str:
    """Re-process a large selection of failed records in chunks (each chunk one batch)."""
    return services.failed_records_reprocess_background(record_ids=record_ids, user_id=user_id)


@shared_task(
    name="runs.supervise", acks_late=False, ignore_result=True, time_limit=300, soft_time_limit=240
)
def supervise_task() -> dict:
    """One supervisor pass (queued by Celery beat every MP_SUPERVISOR_SECONDS)."""
    return services.runs_supervise()
