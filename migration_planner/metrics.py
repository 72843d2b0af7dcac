"""Prometheus text metrics, read from our database and the broker at scrape time.

Nothing here holds secrets: counts, statuses, run UUIDs, worker names and timestamps only.
Who may scrape is decided by ``metrics_allowed`` (a bearer token, else loopback only).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from runs.enums import FINISHED_RUN_STATUSES, RunStatus
from runs.models import Batch, Run, Worker

from .health import broker_status, database_status


def metrics_allowed(request: HttpRequest) -> bool:
    """With MP_METRICS_TOKEN set: only a matching ``Authorization: Bearer`` header. Without:
    only a direct client on the loopback interface (a proxied request, one carrying
    X-Forwarded-For/Forwarded, is refused: the proxy's loopback address proves nothing)."""
    token = settings.MP_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


class _Collector:
    """Collects every metric family afresh at each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from _health()
        yield from _runs()
        yield from _workers()


def _health() -> Iterator[Metric]:
    from runs.services.broker import broker_view

    up = GaugeMetricFamily("mp_up", "1 when the component answers.", labels=["component"])
    up.add_metric(["database"], 1 if database_status(connection)["ok"] else 0)
    up.add_metric(["broker"], 1 if broker_status()["ok"] else 0)
    yield up
    view = broker_view()
    depth = GaugeMetricFamily(
        "mp_queue_depth", "Task messages waiting in the broker queue.", labels=["queue"]
    )
    for queue, n in (view.depth if view else {}).items():
        depth.add_metric([queue], n)
    yield depth
    if view is not None:
        yield GaugeMetricFamily(
            "mp_broker_unacked", "Delivered to workers, not yet acknowledged.", view.unacked
        )


def _runs() -> Iterator[Metric]:
    runs = GaugeMetricFamily("mp_runs", "Runs by status.", labels=["status"])
    counts = dict(Run.objects.values_list("status").annotate(n=Count("id")).order_by())
    for status in RunStatus.values:
        runs.add_metric([status], counts.get(status, 0))
    yield runs
    batches = GaugeMetricFamily(
        "mp_active_batches", "Batches of runs not yet finished, by status.", labels=["status"]
    )
    active = Batch.objects.exclude(run__status__in=FINISHED_RUN_STATUSES)
    for status, n in active.values_list("status").annotate(n=Count("id")).order_by():
        batches.add_metric([status], n)
    yield batches
    rate = GaugeMetricFamily(
        "mp_run_rows_per_second",
        "Rows extracted per second since start, running runs.",
        labels=["run"],
    )
    extracted = GaugeMetricFamily(
        "mp_run_rows_extracted", "Rows extracted so far, running runs.", labels=["run"]
    )
    now = timezone.now()
    running = Run.objects.filter(status=RunStatus.RUNNING, started_at__isnull=False)
    for uuid, rows, started in running.values_list("uuid", "extracted", "started_at"):
        seconds = (now - started).total_seconds()
        rate.add_metric([str(uuid)], rows / seconds if seconds > 0 else 0.0)
        extracted.add_metric([str(uuid)], rows)
    yield rate
    yield extracted
    yield from _stalled(now)


def _stalled(now) -> Iterator[Metric]:
    from runs.selectors import run_list_stalled

    stalled = run_list_stalled(now=now)
    yield GaugeMetricFamily(
        "mp_runs_stalled",
        "Running runs that are stalled (no batch taken for a lease, or a sync nobody drives).",
        len(stalled),
    )
    idle = GaugeMetricFamily(
        "mp_run_stalled_seconds",
        "Seconds a stalled run has waited for a worker.",
        labels=["run", "mode"],
    )
    for run, seconds in stalled:
        idle.add_metric([str(run.uuid), run.mode], seconds)
    yield idle


def _workers() -> Iterator[Metric]:
    from runs.services.workers import worker_live_after

    beats = GaugeMetricFamily(
        "mp_worker_last_heartbeat_timestamp_seconds",
        "Unix time of each worker's last heartbeat.",
        labels=["worker"],
    )
    for name, at in Worker.objects.filter(stopped_at__isnull=True).values_list(
        "name", "last_heartbeat"
    ):
        beats.add_metric([name], at.timestamp())
    yield beats
    live = Worker.objects.filter(stopped_at__isnull=True, last_heartbeat__gte=worker_live_after())
    yield GaugeMetricFamily("mp_workers_live", "Workers with a recent heartbeat.", live.count())


def metrics_text() -> bytes:
    """The Prometheus text exposition of all metrics (queries the database and the broker)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)
