"""The first half of a sync run: create the replication slot (showing whom PostgreSQL waits
for), plan and run the full load from the slot's exported snapshot, and resume a full load
whose worker died (its snapshot died with it; the slot did not)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from runs.connections import connector_for
from runs.engine.connectors import KeyRange
from runs.engine.errors import EngineError
from runs.enums import BatchStatus, LogLevel
from runs.models import Batch, Run

from .cdc import (
    PHASE_FULL_LOAD,
    PHASE_SLOT,
    PHASE_STREAMING,
    _save_cdc,
    _stop_requested,
    slot_name,
)
from .logging import run_log
from .recording import outcome_record
from .state import run_entities, run_ledger_id, run_snapshot


def _slot_create(run: Run, params: dict):
    """Create the run's slot, reporting on the run page whom PostgreSQL waits for meanwhile."""
    from runs.engine.cdc.slot import slot_create, slot_drop

    name = slot_name(run)
    if run.cdc.get("phase") == PHASE_SLOT and slot_drop(params, name):
        # created just before the last attempt died, never read: this run's own, start again
        run_log(run, f"Replication slot {name} of the interrupted attempt dropped.")
    _save_cdc(run, phase=PHASE_SLOT, slot_wait={})
    seen: dict = {}

    def waiting(seconds: float, blockers: list[dict]) -> None:
        _stop_requested(run)  # cancelled meanwhile: SyncAbandoned (the creation is cancelled)
        pids = [b["pid"] for b in blockers]
        if pids != seen.get("pids") or seconds - seen.get("at", 0) >= 5:
            seen.update(pids=pids, at=seconds)
            wait = {"seconds": int(seconds), "timeout": timeout, "blockers": blockers[:20]}
            _save_cdc(run, slot_wait=wait)

    timeout = int(settings.MP_CDC_SLOT_TIMEOUT_SECONDS)
    slot = slot_create(params, name, on_wait=waiting, timeout=float(timeout))
    _save_cdc(run, slot=slot.name, start_lsn=slot.lsn, phase=PHASE_FULL_LOAD, slot_wait={})
    run_log(run, f"Replication slot {slot.name} created; full load from its snapshot.")
    return slot


def full_load(run: Run, params: dict) -> None:
    """Create the slot, plan every entity's batches in its exported snapshot, load them from
    it (recorded like any run's batches), then close the snapshot."""
    from runs.engine.cdc.slot import SnapshotSource

    slot = _slot_create(run, params)
    source = SnapshotSource(params, slot.snapshot)
    try:
        _plan_full_load(run, source)
        _load_batches(run, source)
    finally:
        source.close()
        slot.close()
    _save_cdc(run, phase=PHASE_STREAMING)
    run_log(run, "Full load done; streaming changes from the slot.")


def full_load_resume(run: Run, params: dict) -> None:
    """The worker died during the full load: its exported snapshot died with it, the slot did
    not. Load the batches not done yet from a new snapshot (a state at or after the slot's
    start), then stream from the slot's start: replaying every change since then is
    idempotent per key (last change wins), so each row ends as the source's - none missed,
    none doubled. Raises EngineError when the slot is gone."""
    from runs.engine.cdc.slot import SnapshotSource, slot_info, snapshot_export

    name = slot_name(run)
    if slot_info(params, name) is None:
        raise EngineError(
            f"the sync stopped during its full load and its replication slot {name} is gone "
            "(dropped on the source): roll this run back and start a new sync"
        )
    run_log(
        run,
        "Resuming the full load after an interrupted attempt: the batches not done are read "
        "from a new snapshot of the source; the stream then replays every change since the "
        "slot's start (idempotent per key).",
        LogLevel.WARNING,
    )
    exported = snapshot_export(params)
    source = SnapshotSource(params, exported.snapshot)
    try:
        if run.cdc.get("planned"):
            _record_committed(run)
            _recount_remaining(run, source)
        else:
            _plan_full_load(run, source)
        _load_batches(run, source)
    finally:
        source.close()
        exported.close()
    _save_cdc(run, phase=PHASE_STREAMING)
    run_log(run, "Full load done; streaming changes from the slot.")


def _plan_full_load(run: Run, source) -> None:
    """Pre-run checksums, source totals and every key range as a pending batch, recorded in
    one transaction (so a resumed attempt finds all of them or none)."""
    target, snapshot = connector_for(run.target), run_snapshot(run)
    target.ensure_ledger()
    pre, totals, batches = {}, {}, []
    for entity in run_entities(run):
        checksum = target.table_checksum(entity.target_table, [entity.target_key])
        pre[entity.target_table] = {"rows": checksum.rows, "digest": checksum.digest}
        totals[entity.name] = source.count(entity.source_table)
        for key_range in source.key_ranges(
            entity.source_table, entity.source_key, snapshot.batch_size
        ):
            bounds = key_range.to_dict()
            batches.append(
                Batch(
                    run=run,
                    entity=entity.name,
                    seq=len(batches) + 1,
                    status=BatchStatus.PENDING,
                    key_lower=bounds["lower"],
                    key_upper=bounds["upper"],
                )
            )
    with transaction.atomic():
        Batch.objects.bulk_create(batches)
        Run.objects.filter(pk=run.pk).update(
            pre_checksums=pre,
            entity_totals=totals,
            source_total=sum(totals.values()),
            batches_total=len(batches),
        )
        _save_cdc(run, planned=True)
    run.pre_checksums, run.entity_totals = pre, totals


def _record_committed(run: Run) -> None:
    """Record the batches whose target transaction committed before the worker died but that
    were not recorded here: they count as read from the first snapshot, not the new one."""
    from runs.engine.batch import BatchOutcome

    target, snapshot = connector_for(run.target), run_snapshot(run)
    for batch in Batch.objects.filter(run=run).exclude(status=BatchStatus.DONE).order_by("seq"):
        stored = target.batch_result(run_ledger_id(run), batch.ledger_id)
        if stored is None:
            continue
        Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING)
        batch.status = BatchStatus.RUNNING
        outcome = BatchOutcome.from_meta(stored.result_meta, stored)
        outcome_record(
            batch=batch, outcome=outcome, entity=snapshot.entity(batch.entity), duration_ms=0
        )


def _recount_remaining(run: Run, source) -> None:
    """A resumed full load's source totals: per entity, the rows its done batches accounted
    for plus the rows of its remaining key ranges in the new snapshot (what they will read)."""
    accounted = ("loaded", "failed", "filtered", "duplicates")
    totals = dict(run.entity_totals)
    for entity in run_entities(run):
        batches = Batch.objects.filter(run=run, entity=entity.name).order_by("seq")
        first = batches.exclude(status=BatchStatus.DONE).first()
        if first is None:
            continue
        done = batches.filter(status=BatchStatus.DONE).aggregate(**{c: Sum(c) for c in accounted})
        rest = source.count(
            entity.source_table,
            key_cols=entity.source_key,
            key_range=KeyRange.from_dict({"lower": first.key_lower, "upper": None}),
        )
        totals[entity.name] = sum(done[c] or 0 for c in accounted) + rest
    Run.objects.filter(pk=run.pk).update(entity_totals=totals, source_total=sum(totals.values()))
    run.entity_totals = totals


def _load_batches(run: Run, source) -> None:
    """Run every batch not done yet, in order (each idempotent per its ledger id)."""
    from runs.engine.batch import execute_batch

    target, snapshot = connector_for(run.target), run_snapshot(run)
    pending = Batch.objects.filter(run=run).exclude(status=BatchStatus.DONE).order_by("seq")
    for batch in pending:
        _stop_requested(run)  # cancelled meanwhile: SyncAbandoned
        entity = snapshot.entity(batch.entity)
        batch.attempts += 1
        Batch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.RUNNING, attempts=batch.attempts, started_at=timezone.now()
        )
        batch.status = BatchStatus.RUNNING
        outcome = execute_batch(
            snapshot=snapshot,
            entity=entity,
            key_range=KeyRange.from_dict({"lower": batch.key_lower, "upper": batch.key_upper}),
            source=source,
            target=target,
            run_id=run_ledger_id(run),
            batch_id=batch.ledger_id,
        )
        outcome_record(batch=batch, outcome=outcome, entity=entity, duration_ms=0)
