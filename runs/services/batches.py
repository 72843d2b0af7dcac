"""Batch execution: claim a batch under a lease, run the engine on it, record the outcome
once, put it back when a database is unavailable, park it when it keeps losing its worker."""

from __future__ import annotations

import time
from functools import lru_cache

from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from migration_planner.lib.memory import collection_paused
from runs.connections import connector_for
from runs.engine.connectors import KeyRange
from runs.engine.errors import EngineError, TransientError, is_unavailable
from runs.enums import BatchKind, BatchStatus, LogLevel, RunMode, RunStatus
from runs.models import Batch, Run

from .carry import earlier_runs, failed_carry_batch_lookup, failed_carry_lookup
from .claims import ClaimHeartbeat, db_retrying, lease_delta, worker_id
from .execution import _advance, _fail_run, _finish_if_idle, _watermark_value
from .leases import table_lease_release_ended
from .logging import run_log
from .recording import outcome_record
from .state import run_ledger_id, run_snapshot, run_stored_schemas

MAX_ATTEMPTS = 3  # lost attempts (the worker died mid-batch) before a batch is parked


class BatchBusy(Exception):
    """The batch is being worked by a live claim; try again after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"batch busy, retry in {seconds:.0f}s")
        self.seconds = seconds


def _claim(batch_id: int) -> Batch | None:
    now = timezone.now()
    claimable = Q(status=BatchStatus.PENDING) | Q(status=BatchStatus.RUNNING, lease_until__lt=now)
    claimed = Batch.objects.filter(claimable, pk=batch_id).update(
        status=BatchStatus.RUNNING,
        attempts=F("attempts") + 1,
        # taking over a claim whose lease ran out: that attempt's worker was lost
        lost_attempts=F("lost_attempts")
        + Case(When(status=BatchStatus.RUNNING, then=Value(1)), default=Value(0)),
        lease_until=now + lease_delta(),
        worker=worker_id(),
        started_at=now,
    )
    if not claimed:
        return None
    # the run with what its batch reads (plan, source, target): one query, not four
    return Batch.objects.select_related("run__plan__source", "run__target").get(pk=batch_id)


def _claimed(batch: Batch):
    """The batch row as long as this claim still holds it (status running, same attempt)."""
    return Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts)


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
    if batch.lost_attempts >= MAX_ATTEMPTS:
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
        status=BatchStatus.PARKED,
        lease_until=None,
        error=f"parked: its worker was lost {batch.lost_attempts} times",
    )
    run_log(
        batch.run,
        f"Batch {batch.seq} ({batch.entity}) parked: {batch.lost_attempts} attempts lost their "
        "worker mid-batch (killed, out of memory?). Transient database errors do not count.",
        LogLevel.ERROR,
    )
    _advance(batch.run)
    return "parked"


def _work(batch: Batch) -> str:
    run = batch.run
    entity = run_snapshot(run).entity(batch.entity)
    # bounded: one batch and its failed records (the task collects after it). Turned on
    # between the two, the collector's first pass walked the whole outcome once more.
    with collection_paused():
        recorded = _work_paused(batch, run, entity)
    if not isinstance(recorded, bool):  # the batch ended without an outcome to record
        return recorded
    if recorded:
        try:
            _check_threshold(run)
            _advance(run)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # recorded: the supervisor advances or finishes the run once the database is back
    return "done" if recorded else "already recorded"


def _work_paused(batch: Batch, run: Run, entity) -> bool | str:
    """The engine on the batch, then its outcome recorded: whether it was recorded, or the
    task's answer when the batch failed (raises TransientError to be retried)."""
    heartbeat = ClaimHeartbeat(_claimed(batch))
    heartbeat.start()
    started = time.monotonic()
    try:
        outcome = _engine(batch, entity)
    except Exception as exc:  # noqa: BLE001 - transient: back to pending; other: fail visibly
        if is_unavailable(exc):
            _put_back(batch, exc)
            raise TransientError(f"batch {batch.seq}: {exc}") from exc
        if not _claimed(batch).update(
            status=BatchStatus.FAILED, error=str(exc)[:4000], lease_until=None
        ):
            return "claim lost"  # the supervisor gave the batch to another attempt
        kind = "" if isinstance(exc, EngineError) else f"{exc.__class__.__name__}: "
        _fail_run(run, f"Batch {batch.seq} ({batch.entity}) failed: {kind}{exc}")
        return "failed"
    finally:
        heartbeat.stop.set()
    # The target has committed: record it, waiting out a restart of our database for up to a
    # lease (a conditional update: a late original records nothing). Past that, the lease runs
    # out and the next attempt finds the batch in the target's ledger and records it then.
    return db_retrying(
        lambda: outcome_record(
            batch=batch,
            outcome=outcome,
            entity=entity,
            duration_ms=int((time.monotonic() - started) * 1000),
        ),
        what=f"recording batch {batch.seq}",
    )


def _engine(batch: Batch, entity):
    """Run the engine on the claimed batch (the target transaction: load + ledger)."""
    from runs.engine.batch import execute_batch  # pandas: loaded in the pool child only

    run = batch.run
    if batch.kind == BatchKind.DELETES:
        return _work_deletes(batch, entity)
    earlier = earlier_runs(run)  # both carry lookups take the earlier runs from one query
    return execute_batch(
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
        failed_lookup=failed_carry_lookup(run=run, entity=entity.name, earlier=earlier),
        failed_batch_lookup=failed_carry_batch_lookup(run=run, entity=entity.name, earlier=earlier),
    )


def _put_back(batch: Batch, exc: BaseException) -> None:
    """A database (ours, the source or the target) is restarting or unreachable: the batch
    goes back to pending for the task's retry, without counting as a lost attempt. If our own
    database stays down for a lease, the lease runs out and the supervisor does it instead."""
    text = " ".join(str(exc).split())[:500]
    try:
        db_retrying(
            lambda: _claimed(batch).update(
                status=BatchStatus.PENDING,
                lease_until=None,
                queued_at=timezone.now(),
                error=f"transient, retried: {text}",
            ),
            what=f"putting batch {batch.seq} back",
        )
        run_log(
            batch.run,
            f"Batch {batch.seq} ({batch.entity}): a database is unavailable ({text}); retried.",
            LogLevel.WARNING,
        )
    except TransientError:
        pass


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
    from runs.selectors.carried import failed_records_of  # the selectors load numpy

    records = failed_records_of(run=Run.objects.get(pk=run_id), entity=parent)
    return frozenset(records.values_list("source_key", flat=True))


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
