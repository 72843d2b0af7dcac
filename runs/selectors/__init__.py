"""Reads for runs: lists, live progress, the error queue, comparisons and previews."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from ..enums import FINISHED_RUN_STATUSES, BatchStatus, RunMode, RunStatus
from ..models import COUNTERS, Batch, FailedRecord, LedgerEntry, Rollback, Run, RunLog, Worker
from .queue import (  # the error queue's reads, re-exported
    OPEN_STATUSES as OPEN_STATUSES,
)
from .queue import (
    PAGE_SIZE as PAGE_SIZE,
)
from .queue import (
    QUEUE_FILTERS as QUEUE_FILTERS,
)
from .queue import (
    failed_record_facets as failed_record_facets,
)
from .queue import (
    failed_record_filter as failed_record_filter,
)
from .queue import (
    failed_record_filter_planned as failed_record_filter_planned,
)
from .queue import (
    failed_record_get as failed_record_get,
)
from .queue import (
    failed_record_open_count as failed_record_open_count,
)
from .queue import (
    failed_record_page as failed_record_page,
)
from .queue import (
    failed_record_position as failed_record_position,
)
from .queue import (
    failed_record_search as failed_record_search,
)
from .queue import (
    failed_record_selection as failed_record_selection,
)
from .queue import (
    failed_record_top_errors as failed_record_top_errors,
)
from .queue import (
    failed_record_total as failed_record_total,
)
from .queue import (
    failure_category_check as failure_category_check,
)
from .queue import (
    message_normalise as message_normalise,
)


def run_list(
    *,
    plan_slug: str | None = None,
    status: str | None = None,
    target: str | None = None,
    launched_by: str | None = None,
) -> QuerySet[Run]:
    """Runs newest first with plan, version, target and launcher joined in."""
    qs = Run.objects.select_related("plan", "version", "target", "launched_by", "report")
    if plan_slug:
        qs = qs.filter(plan__slug=plan_slug)
    if status:
        qs = qs.filter(status=status)
    if target:
        qs = qs.filter(target__name=target)
    if launched_by:
        qs = qs.filter(launched_by__username=launched_by)
    return qs.order_by("-created_at")


def run_list_recent(*, limit: int = 10) -> list[Run]:
    """The latest ``limit`` runs."""
    return list(run_list()[:limit])


def run_get(*, uuid) -> Run:
    """One run with what its page shows joined in; raises Run.DoesNotExist."""
    return Run.objects.select_related(
        "plan__source", "version", "target", "launched_by", "report"
    ).get(uuid=uuid)


def duration_text(value: timedelta | None) -> str:
    """A duration as "1h 02m", "3m 07s" or "12s"; "—" when unknown."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds == 0:
        return f"{int(value.total_seconds() * 1000)} ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def run_is_active(run: Run) -> bool:
    """True while the run (or its rollback) may still change: the page keeps polling."""
    return run.status not in FINISHED_RUN_STATUSES


# --------------------------------------------------------------------------- live progress


@dataclass
class EntityProgress:
    name: str
    total: int = 0
    batches_total: int = 0
    batches_done: int = 0
    counts: dict = field(default_factory=dict)

    @property
    def accounted(self) -> int:
        c = self.counts
        return (
            c.get("loaded", 0) + c.get("failed", 0) + c.get("filtered", 0) + c.get("duplicates", 0)
        )

    @property
    def pct(self) -> int:
        if not self.total:
            return 100 if self.batches_total and self.batches_done == self.batches_total else 0
        return min(100, int(self.accounted * 100 / self.total))


@dataclass
class RunProgress:
    entities: list[EntityProgress]
    pct: int
    elapsed: timedelta | None
    rows_per_s: float
    eta: timedelta | None
    open_errors: int

    @property
    def elapsed_text(self) -> str:
        return duration_text(self.elapsed)

    @property
    def eta_text(self) -> str:
        return duration_text(self.eta)


def _entity_order(run: Run) -> list[str]:
    from ..services.state import run_entities

    try:
        return [e.name for e in run_entities(run)]
    except Exception:  # noqa: BLE001 - an unreadable snapshot must not break the live page
        return sorted(run.entity_totals)


def run_progress(run: Run) -> RunProgress:
    """Overall and per-entity progress, throughput and ETA of a run (3 queries)."""
    rows = (
        Batch.objects.filter(run=run)
        .values("entity")
        .annotate(
            n=Count("id"),
            done=Count("id", filter=Q(status__in=[BatchStatus.DONE, BatchStatus.ROLLED_BACK])),
            **{c: Sum(c) for c in COUNTERS},
        )
    )
    by_entity = {r["entity"]: r for r in rows}
    entities = []
    for name in _entity_order(run):
        r = by_entity.get(name, {})
        entities.append(
            EntityProgress(
                name=name,
                total=run.entity_totals.get(name, 0),
                batches_total=r.get("n", 0),
                batches_done=r.get("done", 0),
                counts={c: r.get(c) or 0 for c in COUNTERS},
            )
        )
    accounted = sum(e.accounted for e in entities)
    total = run.source_total
    pct = min(100, int(accounted * 100 / total)) if total else (100 if run.finished_at else 0)
    end = run.finished_at or timezone.now()
    elapsed = end - run.started_at if run.started_at else None
    seconds = elapsed.total_seconds() if elapsed else 0
    rate = run.extracted / seconds if seconds > 0 else 0.0
    eta = None
    if rate and run.status == RunStatus.RUNNING and total > run.extracted:  # none when paused
        eta = timedelta(seconds=int((total - run.extracted) / rate))
    open_errors = failed_record_open_count(run=run)
    return RunProgress(entities, pct, elapsed, rate, eta, open_errors)


def run_idle_seconds(run: Run, *, now=None) -> int | None:
    """Seconds since a worker last took one of the run's batches, while the run waits for one
    (running, batches pending, none running under a live lease); for a sync run, seconds since
    its driver last renewed its lease (or since it started, when none holds it). None
    otherwise (at most 2 queries)."""
    now = now or timezone.now()
    if run.mode == RunMode.SYNC:
        return _sync_idle_seconds(run, now)
    if run.status != RunStatus.RUNNING or run.lease_until is not None or run.started_at is None:
        return None
    stats = Batch.objects.filter(run=run).aggregate(
        last=Max("started_at"),
        pending=Count("id", filter=Q(status=BatchStatus.PENDING)),
        live=Count("id", filter=Q(status=BatchStatus.RUNNING, lease_until__gte=now)),
    )
    if not stats["pending"] or stats["live"]:
        return None
    last = max(filter(None, [stats["last"], run.started_at]))
    return max(0, int((now - last).total_seconds()))


def _sync_idle_seconds(run: Run, now) -> int | None:
    """A live driver renews every third of a lease, so this stays below one lease while the
    sync is driven; past a lease, its driver is gone."""
    if run.status != RunStatus.RUNNING or run.started_at is None:
        return None
    if run.lease_until is not None:
        last = run.lease_until - timedelta(seconds=settings.MP_BATCH_LEASE_SECONDS)
    else:
        last = run.started_at
    return max(0, int((now - last).total_seconds()))


def run_list_stalled(*, now=None) -> list[tuple[Run, int]]:
    """Running runs the run page shows as stalled (idle for at least a lease: no batch taken,
    or a sync nobody drives), with their idle seconds, longest first."""
    now = now or timezone.now()
    stalled = []
    for run in Run.objects.filter(status=RunStatus.RUNNING).select_related("plan"):
        idle = run_idle_seconds(run, now=now)
        if idle is not None and idle >= settings.MP_BATCH_LEASE_SECONDS:
            stalled.append((run, idle))
    return sorted(stalled, key=lambda pair: -pair[1])


@dataclass
class WorkerState:
    name: str
    hostname: str
    pid: int
    concurrency: int
    last_heartbeat: object
    age_s: int
    live: bool
    stopped: bool


def worker_list(*, limit: int = 20) -> list[WorkerState]:
    """Workers by last heartbeat, newest first, each with its age and whether it is live."""
    now = timezone.now()
    live_s = 3 * settings.MP_WORKER_HEARTBEAT_SECONDS
    states = []
    for w in Worker.objects.all()[:limit]:
        age = max(0, int((now - w.last_heartbeat).total_seconds()))
        states.append(
            WorkerState(
                name=w.name,
                hostname=w.hostname,
                pid=w.pid,
                concurrency=w.concurrency,
                last_heartbeat=w.last_heartbeat,
                age_s=age,
                live=w.stopped_at is None and age <= live_s,
                stopped=w.stopped_at is not None,
            )
        )
    return states


def run_batches(run: Run, *, limit: int = 200) -> list[Batch]:
    """The run's batches in order (the first ``limit``)."""
    return list(Batch.objects.filter(run=run).order_by("seq")[:limit])


def run_logs(run: Run, *, limit: int = 15) -> list[RunLog]:
    """The latest log lines, newest first."""
    return list(RunLog.objects.filter(run=run).order_by("-at", "-id")[:limit])


def run_rollbacks(run: Run) -> list[Rollback]:
    """The run's rollbacks, newest first."""
    return list(Rollback.objects.filter(run=run).select_related("requested_by"))


# --------------------------------------------------------------------------- comparison


def run_compare(a: Run, b: Run) -> dict:
    """Counts, durations and failures by category of two runs, side by side."""
    counters = [
        (c.replace("_", " "), getattr(a, c), getattr(b, c), getattr(b, c) - getattr(a, c))
        for c in ("source_total", *COUNTERS)
    ]
    cats = {}
    for run_index, run in enumerate((a, b)):
        for category, n in (
            FailedRecord.objects.filter(run=run)
            .order_by()
            .values_list("category")
            .annotate(n=Count("id"))
        ):
            cats.setdefault(category, [0, 0])[run_index] = n

    def duration(run: Run) -> timedelta | None:
        return run.finished_at - run.started_at if run.started_at and run.finished_at else None

    return {
        "counters": counters,
        "durations": (duration_text(duration(a)), duration_text(duration(b))),
        "categories": sorted((c, v[0], v[1]) for c, v in cats.items()),
    }


# --------------------------------------------------------------------------- rollback preview


def rollback_preview(run: Run) -> list[dict]:
    """Per entity: batches, rows inserted and rows updated that a rollback will undo."""
    rows = (
        LedgerEntry.objects.filter(batch__run=run, rolled_back_at__isnull=True)
        .values("entity")
        .annotate(batches=Count("id"), inserted=Sum("inserted"), updated=Sum("updated"))
        .order_by("entity")
    )
    return [{**r, "inserted": r["inserted"] or 0, "updated": r["updated"] or 0} for r in rows]


def rollback_preview_unwritten(run: Run) -> int:
    """Committed batches of ``run`` that rewrote no row (every row unchanged, filtered or
    failed): a rollback clears their ledger but has nothing to undo."""
    return run.batches.filter(status=BatchStatus.DONE, ledger__isnull=True).count()


# --------------------------------------------------------------------------- launch preview


@dataclass
class LaunchPreview:
    entities: list[dict]
    production: bool
    version_number: int | None
    signed_off: bool
    refusal: str = ""
    total_rows: int = 0
    total_batches: int = 0


def plan_current_version_signed_off(plan) -> tuple[int | None, bool]:
    """(number of the version that holds the plan's current content or None, signed off?)."""
    from mappings.services import plan_content_hash, snapshot_content
    from runs.services.hooks import approved_versions

    latest = plan.versions.order_by("-number").first()
    content = plan_content_hash(plan=plan)
    if latest is None or snapshot_content(latest.snapshot) != content:
        return None, False
    return latest.number, approved_versions(plan=plan).filter(pk=latest.pk).exists()


def launch_preview(*, plan, target, mode: str, scope_entity: str = "") -> LaunchPreview:
    """What a launch will do: entities in load order with source row counts and batches, and
    whether the production gate is open. Reads the source; raises ApplicationError/EngineError."""
    from mappings.services import plan_snapshot_build

    from ..connections import connector_for

    snapshot = plan_snapshot_build(plan=plan)
    source = connector_for(plan.source)
    entities = []
    for entity in snapshot.entities_in_load_order():
        if scope_entity and entity.name != scope_entity:
            continue
        rows = source.count(entity.source_table)
        entities.append(
            {
                "name": entity.name,
                "source_table": entity.source_table,
                "target_table": entity.target_table,
                "rows": rows,
                "batches": math.ceil(rows / snapshot.batch_size) if rows else 0,
            }
        )
    production = target.is_production and mode != RunMode.DRY_RUN
    number, signed = plan_current_version_signed_off(plan)
    preview = LaunchPreview(entities, production, number, signed)
    preview.total_rows = sum(e["rows"] for e in entities)
    preview.total_batches = sum(e["batches"] for e in entities)
    if production and not signed:
        which = f"version {number}" if number else "the plan's current (not yet frozen) version"
        preview.refusal = (
            f"“{target.name}” is a production target: {which} must be signed off by an "
            "approver before it can be loaded."
        )
    return preview
