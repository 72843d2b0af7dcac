"""Health probes for the database, the Celery broker (Redis) and the workers."""

from __future__ import annotations

import time

import redis
from django.conf import settings


def database_status(connection) -> dict:
    """Run SELECT 1 on the application database; never raises."""
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure as "down"
        return {"ok": False, "vendor": connection.vendor, "error": exc.__class__.__name__}
    return {
        "ok": True,
        "vendor": connection.vendor,
        "ms": round((time.monotonic() - started) * 1000, 1),
    }


def broker_status() -> dict:
    """PING the Redis broker with a short timeout; never raises."""
    started = time.monotonic()
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1
        )
        client.ping()
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure as "down"
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def workers_status() -> dict:
    """How many workers sent a heartbeat lately (3 intervals); ok when at least one. Counts
    only: worker names and hosts are left to the authenticated pages and /metrics."""
    from runs.models import Worker
    from runs.services.workers import worker_live_after

    try:
        live = Worker.objects.filter(
            stopped_at__isnull=True, last_heartbeat__gte=worker_live_after()
        ).count()
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure as "down"
        return {"ok": False, "live": 0, "error": exc.__class__.__name__}
    return {"ok": live > 0, "live": live}


def runs_status() -> dict:
    """How many running runs are stalled (what their run page shows: no batch taken for a
    lease, or a sync nobody drives); ok when none. Counts only, like ``workers_status``."""
    from runs.selectors import run_list_stalled

    try:
        stalled = run_list_stalled()
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure as "down"
        return {"ok": False, "stalled": 0, "error": exc.__class__.__name__}
    return {
        "ok": not stalled,
        "stalled": len(stalled),
        "stalled_syncs": sum(1 for run, _ in stalled if run.mode == "sync"),
        "longest_s": stalled[0][1] if stalled else 0,
    }
