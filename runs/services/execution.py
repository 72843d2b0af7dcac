"""Run execution: plan the batches, execute one batch, advance phases, finish with accounting."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.connections import connector_for
from runs.engine.connectors import KeyRange
from runs.engine.drift import entity_check
from runs.engine.errors import EngineError, TransientError
from runs.enums import BatchKind, BatchStatus, LogLevel, RunMode, RunStatus
from runs.models import COUNTERS, Batch, FailedRecord, Run

from . import hooks
from .dispatch import enqueue_batches
from .leases import table_lease_release_ended
from .logging import run_log
from .recording import outcome_record
from .state import (
    phase_batches,
    run_entities,
    run_ledger_id,
    run_phases,
    run_snapshot,
    run_stored_schemas,
)

MAX_ATTEMPTS = 3
ENDED = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.ROLLING_BACK,
    RunStatus.ROLLED_BACK,
)


class BatchBusy(Exception):
    """The batch is being worked by a live claim; try again after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"batch busy, retry in {seconds:.0f}s")
        self.seconds = seconds


def _lease() -> timedelta:
    return timedelta(seconds=settings.MP_BATCH_LEASE_SECONDS)


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


def _plan_entity(run: Run, entity, source, target, seq: int) -> tuple[list[Batch], int]:
    changed = _changed_since(run, entity)
    ranges = source.key_ranges(
        entity.source_table, entity.source_key, run_snapshot(run).batch_size, changed_since=changed
    )
    total = source.count(entity.source_table, changed_since=changed)
    if entity.watermark_column:
        run.watermarks[entity.name] = source.max_value(entity.source_table, entity.watermark_column)
    if run.mode != RunMode.DRY_RUN:
        checksum = target.table_checksum(entity.target_table, [entity.target_key])
        run.pre_checksums[entity.target_table] = {"rows": checksum.rows, "digest": checksum.digest}
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
        status=RunStatus.RUNNING, started_at=now, lease_until=now + _lease()
    ):
        return Run.objects.get(pk=run_id)
    run = Run.objects.select_related("plan__source", "target", "version").get(pk=run_id)
    keeper = _Heartbeat(_preparing(run))
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


def _prepare(run: Run) -> Run:
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
        batches: list[Batch] = []
        for entity in run_entities(run):
            planned, total = _plan_entity(run, entity, source, target, len(batches) + 1)
            batches += planned
            run.entity_totals[entity.name] = total
        batches += _plan_deletes(run, len(batches) + 1)
    except EngineError as exc:
        _fail_run(run, f"Could not start: {exc}")
        return run
    blocked = hooks.before_run(run)
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


def _claim(batch_id: int) -> Batch | None:
    now = timezone.now()
    claimable = Q(status=BatchStatus.PENDING) | Q(status=BatchStatus.RUNNING, lease_until__lt=now)
    claimed = Batch.objects.filter(claimable, pk=batch_id).update(
        status=BatchStatus.RUNNING,
        attempts=F("attempts") + 1,
        lease_until=now + _lease(),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        started_at=now,
    )
    return Batch.objects.select_related("run").get(pk=batch_id) if claimed else None


def _claimed(batch: Batch):
    """The batch row as long as this claim still holds it (status running, same attempt)."""
    return Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts)


class _Heartbeat(threading.Thread):
    """Keeps a claim's lease (a batch's or a preparing run's) alive while the work goes on;
    a claim the supervisor took back is not renewed. Database errors (an outage) are
    survived: the lease then simply runs out."""

    def __init__(self, claim) -> None:
        super().__init__(daemon=True)
        self.claim, self.stop = claim, threading.Event()

    def run(self) -> None:
        interval = max(settings.MP_BATCH_LEASE_SECONDS / 3, 0.5)
        try:
            while not self.stop.wait(interval):
                try:
                    self.claim.update(lease_until=timezone.now() + _lease())
                except DatabaseError:
                    connection.close()
        finally:
            connection.close()


def _busy_or_gone(batch_id: int) -> None:
    batch = Batch.objects.get(pk=batch_id)
    if batch.status == BatchStatus.RUNNING and batch.lease_until:
        wait = (batch.lease_until - timezone.now()).total_seconds()
        raise BatchBusy(max(wait, 0.5) + 0.5)


def batch_execute(*, batch_id: int) -> str:
    """Claim and execute one batch, record its outcome, advance the run. Safe to call twice
    (the claim and the target ledger make it idempotent). Raises BatchBusy while another live
    claim holds it and TransientError for the task to retry."""
    run_status = Batch.objects.filter(pk=batch_id).values_list("run__status", flat=True).get()
    if run_status == RunStatus.PAUSED:
        return "paused"
    if run_status != RunStatus.RUNNING:
        Batch.objects.filter(pk=batch_id, status=BatchStatus.PENDING).update(
            status=BatchStatus.CANCELLED
        )
        _finish_if_idle(batch_id)
        return "not running"
    batch = _claim(batch_id)
    if batch is None:
        _busy_or_gone(batch_id)
        return "already handled"
    if batch.attempts > MAX_ATTEMPTS:
        return _park(batch)
    return batch_work_claimed(batch=batch)


def batch_work_claimed(*, batch: Batch) -> str:
    """Work a batch this worker has claimed (see batch_execute); when its run has ended
    meanwhile (a threshold or another batch failed it), drop the run's table leases once no
    other batch of it is in flight. Raises TransientError for the task to retry."""
    try:
        return _work(batch)
    finally:
        table_lease_release_ended(run_id=batch.run_id)


def _park(batch: Batch) -> str:
    _claimed(batch).update(
        status=BatchStatus.PARKED, lease_until=None, error=f"parked after {MAX_ATTEMPTS} attempts"
    )
    run_log(
        batch.run,
        f"Batch {batch.seq} ({batch.entity}) parked after {MAX_ATTEMPTS} attempts "
        "that did not finish (worker lost?).",
        LogLevel.ERROR,
    )
    _advance(batch.run)
    return "parked"


def _work(batch: Batch) -> str:
    run = batch.run
    entity = run_snapshot(run).entity(batch.entity)
    heartbeat = _Heartbeat(_claimed(batch))
    heartbeat.start()
    started = time.monotonic()
    try:
        from runs.engine.batch import execute_batch  # pandas: loaded in the pool child only

        if batch.kind == BatchKind.DELETES:
            outcome = _work_deletes(batch, entity)
        else:
            outcome = execute_batch(
                snapshot=run_snapshot(run),
                entity=entity,
                key_range=KeyRange.from_dict({"lower": batch.key_lower, "upper": batch.key_upper}),
                source=connector_for(run.plan.source),
                target=connector_for(run.target),
                run_id=run_ledger_id(run),
                batch_id=batch.ledger_id,
                dry_run=run.mode == RunMode.DRY_RUN,
                changed_since=_watermark_value(run, entity),
                skip_unchanged=True,  # loads and deltas write only rows that differ
                failed_parents=_failed_parents(run, entity),
                stored_schema=run_stored_schemas(run),
            )
    except TransientError:
        _claimed(batch).update(status=BatchStatus.PENDING, lease_until=None)
        raise
    except Exception as exc:  # noqa: BLE001 - any other error fails the batch and run visibly
        if not _claimed(batch).update(
            status=BatchStatus.FAILED, error=str(exc)[:4000], lease_until=None
        ):
            return "claim lost"  # the supervisor gave the batch to another attempt
        kind = "" if isinstance(exc, EngineError) else f"{exc.__class__.__name__}: "
        _fail_run(run, f"Batch {batch.seq} ({batch.entity}) failed: {kind}{exc}")
        return "failed"
    finally:
        heartbeat.stop.set()
    recorded = outcome_record(
        batch=batch,
        outcome=outcome,
        entity=entity,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    if recorded:
        _check_threshold(run)
        _advance(run)
    return "done" if recorded else "already recorded"


def _work_deletes(batch: Batch, entity):
    """A delete batch: apply the entity's delete policy to keys gone from the source."""
    from runs.engine.batch import BatchOutcome
    from runs.engine.deletes import apply_deletes

    run = batch.run
    done = apply_deletes(
        snapshot=run_snapshot(run),
        entity=entity,
        source=connector_for(run.plan.source),
        target=connector_for(run.target),
        run_id=run_ledger_id(run),
        batch_prefix=batch.ledger_id,
        dry_run=run.mode == RunMode.DRY_RUN,
    )
    verb = "deleted" if entity.delete_policy == "delete" else "marked"
    run_log(
        run,
        f"Entity {entity.name}: {done.checked:,} ledgered keys checked against the source, "
        f"{done.missing:,} gone from it, {done.applied:,} target rows {verb}.",
    )
    return BatchOutcome(deleted=done.applied)


@lru_cache(maxsize=64)
def _failed_parent_keys(run_id: int, parent: str) -> frozenset[str]:
    # Children start only after every parent batch is done, so the set no longer changes.
    return frozenset(
        FailedRecord.objects.filter(run_id=run_id, entity=parent).values_list(
            "source_key", flat=True
        )
    )


def _failed_parents(run: Run, entity) -> dict[str, frozenset[str]] | None:
    """For a dry run: parent keys that failed in this run (a load would not have them)."""
    if run.mode != RunMode.DRY_RUN:
        return None
    from runs.engine.batch import reference_parents

    return {parent: _failed_parent_keys(run.pk, parent) for parent in reference_parents(entity)}


def _check_threshold(run: Run) -> None:
    run.refresh_from_db(fields=["extracted", "failed", "status", "mode"])
    limit = float(run_snapshot(run).failure_threshold_pct)
    if run.mode == RunMode.DRY_RUN or run.status != RunStatus.RUNNING or not run.extracted:
        return
    pct = run.failed * 100 / run.extracted
    if pct <= limit:
        return
    _fail_run(
        run,
        f"Failure threshold passed: {pct:.1f}% of {run.extracted:,} rows failed "
        f"(threshold {limit:g}%). Remaining batches cancelled.",
    )
    if run.plan.rollback_on_threshold:
        from .rollback import run_rollback_request

        run_rollback_request(run=run, user=None, reason="automatic: failure threshold passed")


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
