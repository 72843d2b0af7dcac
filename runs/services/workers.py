"""Worker heartbeats: each Celery worker's parent process reports itself to our database."""

from __future__ import annotations

import threading
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from runs.models import Worker


def worker_live_after():
    """Heartbeats at or after this moment count as live (three heartbeat intervals)."""
    return timezone.now() - timedelta(seconds=3 * settings.MP_WORKER_HEARTBEAT_SECONDS)


def worker_heartbeat(*, name: str, hostname: str, pid: int, concurrency: int) -> Worker:
    """Record that the worker ``name`` is alive now (insert or update). Idempotent."""
    now = timezone.now()
    worker, created = Worker.objects.get_or_create(
        name=name,
        defaults={
            "hostname": hostname,
            "pid": pid,
            "concurrency": concurrency,
            "started_at": now,
            "last_heartbeat": now,
        },
    )
    if not created:
        restarted = worker.pid != pid or worker.stopped_at is not None
        Worker.objects.filter(pk=worker.pk).update(
            hostname=hostname,
            pid=pid,
            concurrency=concurrency,
            last_heartbeat=now,
            stopped_at=None,
            **({"started_at": now} if restarted else {}),
        )
    return worker


def worker_stopped(*, name: str) -> int:
    """Mark a worker that shut down cleanly as stopped. Returns rows changed (0 or 1)."""
    return Worker.objects.filter(name=name).update(stopped_at=timezone.now())


class WorkerBeat(threading.Thread):
    """Daemon thread in a worker's parent process: a heartbeat every
    MP_WORKER_HEARTBEAT_SECONDS. Closes its connection after each beat, so pool children
    forked meanwhile never share a live database socket; an outage only skips beats."""

    def __init__(self, *, name: str, hostname: str, pid: int, concurrency: int) -> None:
        super().__init__(daemon=True, name="mp-worker-heartbeat")
        self.identity = {"name": name, "hostname": hostname, "pid": pid, "concurrency": concurrency}
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            try:
                worker_heartbeat(**self.identity)
            except DatabaseError:
                pass  # the database is down: the next beat tries again
            finally:
                connection.close()
            if self.stop.wait(settings.MP_WORKER_HEARTBEAT_SECONDS):
                return
