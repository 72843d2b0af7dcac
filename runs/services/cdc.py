"""Continuous sync (full load + change data capture) of a plan into a PostgreSQL target.

One long task drives a sync run: check the source can stream, create the slot with its exported
snapshot, full-load every entity from that snapshot (recorded as ordinary batches), then apply
the slot's changes until an operator asks it to stop and it has drained. A restarted task
resumes streaming from the checkpoint in the target. The slot is dropped when the sync ends,
fails or is cancelled.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.connections import connector_for
from runs.engine.connectors import postgres_libpq_params
from runs.engine.errors import EngineError, TransientError
from runs.enums import LogLevel, RunMode, RunStatus
from runs.models import COUNTERS, Batch, Run

from .execution import _ended, _fail_run
from .logging import run_log
from .recording import failed_records_insert
from .state import run_ledger_id, run_snapshot

PHASE_SLOT, PHASE_FULL_LOAD = "creating_slot", "full_load"
PHASE_STREAMING, PHASE_DONE = "streaming", "done"


class SyncAbandoned(Exception):
    """The run was cancelled (or failed elsewhere) while streaming."""


def slot_name(run: Run) -> str:
    """The run's replication slot (one per sync run, never shared)."""
    return f"mp_sync_{run.uuid.hex[:20]}"


@transaction.atomic
def _save_cdc(run: Run, **values) -> None:
    """Merge ``values`` into the stored state under a row lock (an operator's stop request
    written meanwhile is kept, never overwritten by a progress report)."""
    stored = Run.objects.select_for_update().values_list("cdc", flat=True).get(pk=run.pk)
    run.cdc = {**stored, **values}
    Run.objects.filter(pk=run.pk).update(cdc=run.cdc)


def sync_check_source(*, source) -> None:
    """Raise ApplicationError saying what to change when the source cannot stream changes
    (wal_level, REPLICATION, slots) or cannot be reached. Read-only."""
    from runs.engine.cdc.slot import cdc_check

    try:
        cdc_check(source.connection_params())
    except (EngineError, TransientError) as exc:
        raise ApplicationError(f"“{source.name}” cannot feed a sync: {exc}", field="mode") from exc


def sync_check_systems(*, source, target) -> None:
    """Raise ApplicationError unless both systems are PostgreSQL (what CDC reads and applies
    to). Read-only."""
    if source.kind == "mysql":
        raise ApplicationError(
            f"“{source.name}” is a MySQL / MariaDB source: change data capture reads PostgreSQL "
            "logical decoding only (use delta runs: a watermark column for changed rows, the "
            "entity's delete policy for deleted ones). Reading the binlog is not built (see "
            "docs/operations.md, Change data capture).",
            field="mode",
        )
    if source.kind != "postgresql":
        raise ApplicationError(
            f"“{source.name}” is a {source.get_kind_display()} source: change data capture "
            "reads PostgreSQL logical decoding only (use delta runs for other sources).",
            field="mode",
        )
    if target.kind != "postgresql":
        raise ApplicationError(
            f"“{target.name}” is a {target.get_kind_display()} target: a sync applies changes "
            "to PostgreSQL targets only (use delta runs instead).",
            field="mode",
        )


def sync_run(*, run_id: int) -> Run:
    """Drive a sync run to its end: slot, full load, stream, drain, drop the slot. Resumable at
    every step (a crash during the full load resumes it: see cdc_full_load). Raises
    TransientError for the task to retry; other errors fail the run visibly."""
    from runs.engine.cdc.slot import CdcSetupError, cdc_check, slot_drop

    from .cdc_full_load import full_load, full_load_resume

    run = Run.objects.select_related("plan__source", "target", "version").get(pk=run_id)
    if run.status == RunStatus.QUEUED:
        Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now())
        run.refresh_from_db()
    if run.status != RunStatus.RUNNING:
        return run
    try:
        params = postgres_libpq_params(run.plan.source.connection_params())
    except (EngineError, ApplicationError) as exc:  # it points at our own database
        _fail_run(run, f"Sync failed: {exc}")
        return run
    try:
        sync_check_systems(source=run.plan.source, target=run.target)
        if not run.cdc.get("slot"):
            cdc_check(params)
            full_load(run, params)
        elif run.cdc.get("phase") == PHASE_FULL_LOAD:
            full_load_resume(run, params)
        _stream(run, params)
    except SyncAbandoned:
        slot_drop(params, slot_name(run))
        run_log(run, "Sync abandoned: replication slot dropped.", LogLevel.WARNING)
        return run
    except TransientError:
        raise  # a database is unavailable: retried, resuming from the checkpoint
    except (CdcSetupError, ApplicationError, EngineError) as exc:
        if run.cdc.get("slot"):  # never a slot this run did not create
            slot_drop(params, slot_name(run))
        _fail_run(run, f"Sync failed: {exc}")
        return run
    slot_drop(params, slot_name(run))
    _finish(run)
    return run


def _stream(run: Run, params: dict) -> None:
    from runs.engine.cdc.apply import Applier, Counters, checkpoint_read
    from runs.engine.cdc.sync import stream_changes

    target = connector_for(run.target)
    found = checkpoint_read(target, slot_name(run))
    lsn, counters = found if found else (int(run.cdc["start_lsn"]), Counters())
    applier = Applier(
        snapshot=run_snapshot(run),
        source=connector_for(run.plan.source),
        target=target,
        run_id=run_ledger_id(run),
        slot=slot_name(run),
    )
    rate = _Rate(counters.total_events)
    stream_changes(
        params=params,
        slot=slot_name(run),
        start_lsn=lsn,
        counters=counters,
        applier=applier,
        stop_requested=lambda: _stop_requested(run),
        on_group=lambda result: _record_group(run, result),
        on_progress=lambda progress: _record_progress(run, params, progress, rate),
        group_size=int(settings.MP_CDC_GROUP_SIZE),
    )


class _Rate:
    """Events per second between two progress reports."""

    def __init__(self, events: int) -> None:
        self.events, self.at = events, time.monotonic()

    def update(self, events: int) -> float:
        now = time.monotonic()
        rate = (events - self.events) / max(now - self.at, 1e-3)
        self.events, self.at = events, now
        return rate


def _stop_requested(run: Run) -> bool:
    status, cdc = Run.objects.filter(pk=run.pk).values_list("status", "cdc").get()
    if status != RunStatus.RUNNING:
        raise SyncAbandoned(status)
    return bool(cdc.get("stop_requested"))


@transaction.atomic
def _record_group(run: Run, result) -> None:
    """Failed rows into the error queue; run counters = full-load batches + the checkpoint's
    totals (absolute, so a restart neither loses nor doubles them)."""
    for entity, outcome in result.outcomes:
        if outcome.failures:
            failed_records_insert(run=run, batch=None, entity=entity, failures=outcome.failures)
    full = Batch.objects.filter(run=run).aggregate(**{c: Sum(c) for c in COUNTERS})
    c = result.counters
    Run.objects.filter(pk=run.pk).update(
        **{name: (full[name] or 0) + getattr(c, name, 0) for name in COUNTERS}
    )


def _record_progress(run: Run, params: dict, progress, rate: _Rate) -> None:
    from runs.engine.cdc.slot import lsn_text, slot_info

    info = slot_info(params, slot_name(run)) or {}
    retained = int(info.get("retained_bytes") or 0)
    _save_cdc(
        run,
        applied_lsn=lsn_text(progress.applied_lsn),
        lag_seconds=round(progress.lag_seconds, 3),
        lag_bytes=progress.lag_bytes,
        events=progress.counters.events,
        events_total=progress.counters.total_events,
        events_per_s=round(rate.update(progress.counters.total_events), 1),
        deletes_ignored=progress.counters.deletes_ignored,
        retained_bytes=retained,
        wal_warning=retained >= int(settings.MP_CDC_WAL_WARN_BYTES),
        stopping=progress.stopping,
        drained=progress.drained,
        updated_at=timezone.now().isoformat(),
    )


def _finish(run: Run) -> None:
    _save_cdc(
        run,
        phase=PHASE_DONE,
        retained_bytes=0,
        wal_warning=False,
        lag_seconds=0.0,
        lag_bytes=0,
        events_per_s=0.0,
    )
    from runs.engine.cdc.apply import checkpoint_drop

    checkpoint_drop(connector_for(run.target), slot_name(run))
    if Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now()
    ):
        run.refresh_from_db()
        run_log(
            run,
            f"Sync drained and finished: {run.cdc.get('events_total', 0):,} changes applied, "
            f"{run.loaded:,} rows loaded, {run.deleted:,} deleted, {run.failed:,} failed; "
            "replication slot dropped.",
        )
        _ended(run.pk)


@transaction.atomic
def sync_stop(*, run: Run, user) -> Run:
    """Ask a streaming sync to drain (apply everything committed so far) and finish.
    Transactional; PermissionDeniedError (not an operator), ApplicationError (not a live sync)."""
    if user is not None and not user.has_perm("mp.control_run"):
        raise PermissionDeniedError("Your role does not allow stopping a sync.")
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.mode != RunMode.SYNC or run.status != RunStatus.RUNNING:
        raise ApplicationError("Only a running sync can be stopped and drained.")
    run.cdc = {**run.cdc, "stop_requested": True, "stop_requested_at": timezone.now().isoformat()}
    run.save(update_fields=["cdc"])
    audit_record(
        action=AuditAction.RUN_CONTROL,
        actor=user,
        obj=run,
        before={"sync": "streaming"},
        after={"sync": "stopping (drain, then finish)"},
    )
    run_log(run, f"Stop requested by {getattr(user, 'username', 'the system')}: draining.")
    return run
