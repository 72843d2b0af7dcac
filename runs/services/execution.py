"""Run execution: plan the batches, advance phases, finish with accounting (see batches.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

from django.db import transaction
from django.db.models import Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.connections import connection_spec, connector_for
from runs.engine.connectors import connect
from runs.engine.drift import entity_check
from runs.engine.errors import EngineError, TransientError, is_unavailable
from runs.enums import BatchKind, BatchStatus, LogLevel, RunMode, RunStatus
from runs.models import COUNTERS, Batch, Run

from . import hooks
from .claims import ClaimHeartbeat, db_retrying, lease_delta
from .dispatch import enqueue_batches
from .leases import table_lease_release_ended
from .logging import run_log
from .queue_actions import failed_records_analyze, failed_records_supersede
from .state import (
    phase_batches,
    run_entities,
    run_phases,
    run_snapshot,
    run_stored_schemas,
)

# Planning's other threads: the pre-run checksums of the target and each source table's count
# while the source's key ranges are planned (one worker plans; the other has no batch yet, so a
# core is free).
_PLANNING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mp-plan")

ENDED = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.ROLLING_BACK,
    RunStatus.ROLLED_BACK,
)


def _fail_run(run: Run, message: str) -> None:
    updated = (
        Run.objects.filter(pk=run.pk)
        .exclude(status__in=ENDED)
        .update(status=RunStatus.FAILED, error=message[:4000], finished_at=timezone.now())
    )
    Batch.objects.filter(run=run, status=BatchStatus.PENDING).update(status=BatchStatus.CANCELLED)
    run_log(run, message, LogLevel.ERROR)
    if updated:
        _ended(run.pk)


def _ended(run_id: int) -> None:
    """Free the run's table leases (unless a batch is still in flight: the last one to end
    frees them) and run the after-run hooks once the change is committed."""
    table_lease_release_ended(run_id=run_id)
    failed_records_supersede(run=Run.objects.get(pk=run_id))
    # the queue's pages (and the report) plan over this run's records with fresh statistics
    # robust: whatever befalls the statistics, the after-run hooks (the report) still run
    transaction.on_commit(
        lambda: failed_records_analyze(run=Run.objects.get(pk=run_id)), robust=True
    )
    transaction.on_commit(lambda: hooks.after_run(Run.objects.get(pk=run_id)))


def _watermark_value(run: Run, entity) -> str | None:
    """For a delta run: the high-water mark the last successful load/delta run recorded."""
    if run.mode != RunMode.DELTA or not entity.watermark_column:
        return None
    previous = (
        Run.objects.filter(
            plan=run.plan,
            target=run.target,
            status=RunStatus.SUCCEEDED,
            mode__in=[RunMode.LOAD, RunMode.DELTA],
        )
        .exclude(pk=run.pk)
        .order_by("-finished_at")
        .first()
    )
    return previous.watermarks.get(entity.name) if previous else None


def _changed_since(run: Run, entity) -> tuple[str, str] | None:
    mark = _watermark_value(run, entity)
    return (entity.watermark_column, mark) if mark else None


def _pre_checksums(spec: tuple[str, dict], tables: list[tuple[str, str]]) -> dict[str, dict]:
    """Table -> {rows, digest} of each (target table, key column) before the run writes: the
    rollback proves the target is back to these. On a connector of its own (``spec``, from
    ``connection_spec``), so the caller's thread can plan the key ranges on the source
    meanwhile: a re-run's target is full, and its checksum was the largest serial step of
    planning. Read-only; raises what the target raises."""
    target = connect(*spec)
    try:
        out = {}
        for table, key in tables:
            checksum = target.table_checksum(table, [key])
            out[table] = {"rows": checksum.rows, "digest": checksum.digest}
        return out
    finally:
        target.close()


def _count(spec: tuple[str, dict], table: str, changed: tuple[str, str] | None) -> int:
    """The source table's row count (since ``changed``) on a connector of its own (``spec``),
    so the caller's thread computes the key ranges meanwhile (two source sessions: 10 M rows'
    count 0.85 s beside the ranges' 2.6 s). Read-only; raises what the source raises."""
    source = connect(*spec)
    try:
        return source.count(table, changed_since=changed)
    finally:
        source.close()


def _plan_entity(
    run: Run, entity, source, seq: int, spec: tuple[str, dict] | None = None
) -> tuple[list[Batch], int]:
    changed = _changed_since(run, entity)
    counted = None if spec is None else _PLANNING.submit(_count, spec, entity.source_table, changed)
    try:
        ranges = source.key_ranges(
            entity.source_table,
            entity.source_key,
            run_snapshot(run).batch_size,
            changed_since=changed,
        )
    except BaseException:
        if counted is not None:
            wait([counted])  # the thread never outlives planning; the ranges' error counts
        raise
    if changed is None:  # the whole table's: the before-run checks may read in these ranges
        run.source_ranges[entity.name] = ranges
    if counted is not None:
        total = counted.result()
    else:
        total = source.count(entity.source_table, changed_since=changed)
    if entity.watermark_column:
        run.watermarks[entity.name] = source.max_value(entity.source_table, entity.watermark_column)
    batches = [
        Batch(
            run=run,
            entity=entity.name,
            seq=seq + i,
            key_lower=r.to_dict()["lower"],
            key_upper=r.to_dict()["upper"],
        )
        for i, r in enumerate(ranges)
    ]
    return batches, total


def _plan_deletes(run: Run, seq: int) -> list[Batch]:
    """A delta run's delete batches: one per entity with a delete policy (it pages through the
    entity's ledgered keys itself)."""
    if run.mode != RunMode.DELTA:
        return []
    from runs.engine.deletes import check_policy

    planned = []
    for entity in run_entities(run):
        check_policy(entity)
        if entity.delete_policy != "ignore":
            planned.append(
                Batch(run=run, entity=entity.name, kind=BatchKind.DELETES, seq=seq + len(planned))
            )
    return planned


def run_prepare(*, run_id: int) -> Run:
    """Plan a queued run's batches and queue the first entity's. Idempotent (a run that is
    not queued is left alone); engine errors fail the run with their message."""
    now = timezone.now()
    # The claim: only one worker moves the run from queued to preparing (a lease kept alive
    # while it works; the supervisor starts it again if the lease expires).
    if not Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, lease_until=now + lease_delta()
    ):
        return Run.objects.get(pk=run_id)
    run = Run.objects.select_related("plan__source", "target", "version").get(pk=run_id)
    keeper = ClaimHeartbeat(_preparing(run))
    keeper.start()
    try:
        return _prepare(run)
    finally:
        keeper.stop.set()


def _preparing(run: Run):
    """The run row as long as this preparation still holds it (its claim's start time)."""
    return Run.objects.filter(
        pk=run.pk, status=RunStatus.RUNNING, started_at=run.started_at, lease_until__isnull=False
    )


def _unprepare(run: Run, exc: BaseException) -> None:
    """A database is unavailable while planning: the run goes back to queued for the task's
    retry (or, if our database stays down, its preparation lease runs out: the supervisor)."""
    text = " ".join(str(exc).split())[:500]
    try:
        db_retrying(
            lambda: _preparing(run).update(status=RunStatus.QUEUED, lease_until=None),
            what=f"queueing run {run.pk} again",
        )
        run_log(
            run, f"A database is unavailable while planning ({text}); retried.", LogLevel.WARNING
        )
    except TransientError:
        pass


def _plan_batches(run: Run, source) -> list[Batch]:
    """Every entity's key-range batches (and a delta run's delete batches), unsaved; the
    entities' source totals go on ``run``, and the key ranges of each entity planned over its
    whole table (``run.source_ranges``, in memory only)."""
    run.source_ranges = {}
    batches: list[Batch] = []
    spec = connection_spec(run.plan.source)
    for entity in run_entities(run):
        planned, total = _plan_entity(run, entity, source, len(batches) + 1, spec)
        batches += planned
        run.entity_totals[entity.name] = total
    return batches + _plan_deletes(run, len(batches) + 1)


def _not_started(run: Run, exc: Exception) -> Run:
    """Preparing failed: a database unavailable queues the run again (raises TransientError
    for the task's retry), an engine error fails the run with its message, others raise."""
    if is_unavailable(exc):
        _unprepare(run, exc)
        raise TransientError(f"preparing run {run.pk}: {exc}") from exc
    if not isinstance(exc, EngineError):
        raise exc
    _fail_run(run, f"Could not start: {exc}")
    return run


def _prepare(run: Run) -> Run:
    checksums = None
    try:
        source, target = connector_for(run.plan.source), connector_for(run.target)
        for entity in run_entities(run):  # drift since the launch: refuse before planning
            entity_check(
                entity,
                stored=run_stored_schemas(run),
                source=source.live_table(entity.source_table),
                target=target.live_table(entity.target_table),
            )
        if run.mode != RunMode.DRY_RUN:
            target.ensure_ledger()
            tables = [(e.target_table, e.target_key) for e in run_entities(run)]
            checksums = _PLANNING.submit(_pre_checksums, connection_spec(run.target), tables)
        batches = _plan_batches(run, source)
        # The before-run checks (pre-validation reads the source) while the target's checksum
        # runs: it was the longest step of a re-run's preparation, and both still end before
        # any batch is queued.
        blocked = hooks.before_run(run)
        if checksums is not None:
            run.pre_checksums.update(checksums.result())
    except BaseException as exc:
        if checksums is not None:
            wait([checksums])  # the thread never outlives planning; planning's error counts
        if not isinstance(exc, Exception):
            raise
        return _not_started(run, exc)
    if blocked:
        _fail_run(run, f"Stopped before writing anything: {blocked}")
        return run
    with transaction.atomic():
        if not _preparing(run).update(lease_until=None):
            return run  # the supervisor gave the preparation to another worker
        Batch.objects.bulk_create(batches)
        run.source_total = sum(run.entity_totals.values())
        run.batches_total = len(batches)
        run.lease_until = None
        run.save(
            update_fields=[
                "pre_checksums",
                "entity_totals",
                "watermarks",
                "source_total",
                "batches_total",
                "lease_until",
            ]
        )
        run_log(
            run,
            f"Planned {len(batches):,} batches for {run.source_total:,} source rows "
            f"({', '.join(f'{k} {v:,}' for k, v in run.entity_totals.items())}).",
        )
        _start_phase(run, 0)
    return run


def _start_phase(run: Run, phase: int) -> None:
    """Queue the batches of the first phase at or after ``phase`` that has any; finish if none."""
    phases = run_phases(run)
    while phase < len(phases):
        ids = list(
            phase_batches(run, phase)
            .filter(status=BatchStatus.PENDING)
            .values_list("pk", flat=True)
        )
        if ids:
            Run.objects.filter(pk=run.pk).update(phase=phase)
            name, kind = phases[phase]
            what = "source deletes" if kind == BatchKind.DELETES else f"{len(ids):,} batches"
            run_log(run, f"Entity {name}: {what} queued.")
            enqueue_batches(ids)
            return
        phase += 1
    Run.objects.filter(pk=run.pk).update(phase=phase)
    transaction.on_commit(lambda: run_finish(run_id=run.pk))


def _advance(run: Run) -> None:
    """Start the next entity once none of the current one's batches is pending or running."""
    run.refresh_from_db(fields=["phase", "status"])
    if run.status not in (RunStatus.RUNNING, RunStatus.CANCELLING):
        return
    if run.status == RunStatus.CANCELLING:
        _finish_if_idle(None, run=run)
        return
    if run.phase >= len(run_phases(run)):
        return
    busy = (
        phase_batches(run, run.phase)
        .filter(status__in=[BatchStatus.PENDING, BatchStatus.RUNNING])
        .exists()
    )
    if busy:
        return
    with transaction.atomic():
        if Run.objects.filter(pk=run.pk, phase=run.phase).update(phase=run.phase + 1):
            _start_phase(run, run.phase + 1)


def _finish_if_idle(batch_id: int | None, run: Run | None = None) -> None:
    run = run or Run.objects.get(batches__pk=batch_id)
    if run.status != RunStatus.CANCELLING:
        return
    if not Batch.objects.filter(run=run, status=BatchStatus.RUNNING).exists():
        cancelled = Run.objects.filter(pk=run.pk, status=RunStatus.CANCELLING).update(
            status=RunStatus.CANCELLED,
            finished_at=timezone.now(),
            # a run cancelled while still queued never started: it ends where it was
            started_at=Coalesce("started_at", Value(timezone.now())),
        )
        if cancelled:
            run_log(run, "Run cancelled.", LogLevel.WARNING)
            _ended(run.pk)


def _accounting(run: Run) -> list[str]:
    problems = []
    for entity in run_entities(run):
        sums = Batch.objects.filter(run=run, entity=entity.name).aggregate(
            **{c: Sum(c) for c in COUNTERS}
        )
        sums = {k: v or 0 for k, v in sums.items()}
        accounted = sums["loaded"] + sums["failed"] + sums["filtered"] + sums["duplicates"]
        expected = run.entity_totals.get(entity.name, 0)
        if accounted != expected:
            problems.append(
                f"{entity.name}: {expected:,} source rows but {accounted:,} accounted for "
                f"(loaded {sums['loaded']:,} + failed {sums['failed']:,} + filtered "
                f"{sums['filtered']:,} + duplicate {sums['duplicates']:,}), "
                f"{expected - accounted:+,} rows"
            )
    return problems


def run_finish(*, run_id: int) -> Run:
    """Close a run whose batches are all worked: accounting per entity decides success.
    Idempotent: only a running run is finished; a sync run only by its own task."""
    run = Run.objects.select_related("plan").get(pk=run_id)
    if run.status != RunStatus.RUNNING or run.mode == RunMode.SYNC:
        return run  # a sync is finished by its own task once drained (services.cdc)
    problems = _accounting(run)
    unfinished = Batch.objects.filter(run=run).exclude(status=BatchStatus.DONE).count()
    if unfinished:
        problems.append(f"{unfinished} batch(es) did not finish (parked or failed)")
    if problems:
        _fail_run(run, "Accounting does not balance: " + "; ".join(problems))
    elif Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now()
    ):
        run.refresh_from_db()
        run_log(
            run,
            f"Run succeeded: {run.loaded:,} loaded ({run.unchanged:,} of them unchanged, not "
            f"rewritten), {run.failed:,} failed, "
            f"{run.filtered:,} filtered, {run.duplicates:,} duplicate.",
        )
        _ended(run.pk)
    run.refresh_from_db()
    return run
