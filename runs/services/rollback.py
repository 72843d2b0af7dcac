"""Rollback of a run from the target's ledger, verified against the pre-run checksums."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.connections import connector_for
from runs.engine.errors import EngineError
from runs.engine.rollback import rollback_run
from runs.enums import BatchStatus, LogLevel, RollbackStatus, RunMode, RunStatus
from runs.models import Batch, LedgerEntry, Rollback, Run
from validation.audit import audit_record
from validation.enums import AuditAction

from . import hooks
from .dispatch import enqueue_rollback
from .logging import run_log
from .state import run_entities, run_ledger_id

ROLLBACKABLE = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


@transaction.atomic
def run_rollback_request(*, run: Run, user, reason: str = "", enqueue: bool = True) -> Rollback:
    """Mark the run rolling back and queue the undo (``enqueue=False``: the caller executes
    it). Transactional; raises PermissionDeniedError (not an operator) or ApplicationError
    (dry run, still running)."""
    if user is not None and not user.has_perm("mp.rollback_run"):
        raise PermissionDeniedError("Only an operator may roll a run back.")
    if run.mode == RunMode.DRY_RUN:
        raise ApplicationError("A dry run wrote nothing to the target; there is nothing to undo.")
    if not Run.objects.filter(pk=run.pk, status__in=ROLLBACKABLE).update(
        status=RunStatus.ROLLING_BACK
    ):
        run.refresh_from_db(fields=["status"])
        raise ApplicationError(
            f"A {run.get_status_display().lower()} run cannot be rolled back; wait until it ends "
            "(cancel it first if needed)."
        )
    rollback = Rollback.objects.create(
        run=run, requested_by=user, checksums_before_run=run.pre_checksums
    )
    audit_record(
        action=AuditAction.ROLLBACK,
        actor=user,
        obj=run,
        before={"status": run.status},
        after={"status": "rolling_back", "reason": reason},
    )
    run_log(
        run,
        f"Rollback requested by {getattr(user, 'username', 'the system')}"
        f"{': ' + reason if reason else ''}.",
        LogLevel.WARNING,
    )
    if enqueue:
        enqueue_rollback(rollback.pk)
    return rollback


def _verify(run: Run, target) -> tuple[dict, dict]:
    after, differences = {}, {}
    for entity in run_entities(run):
        table = entity.target_table
        if table not in run.pre_checksums:
            continue
        checksum = target.table_checksum(table, [entity.target_key])
        after[table] = {"rows": checksum.rows, "digest": checksum.digest}
        if after[table] != run.pre_checksums[table]:
            differences[table] = {"before": run.pre_checksums[table], "after": after[table]}
    return after, differences


def run_rollback_execute(*, rollback_id: int) -> Rollback:
    """Undo the run's batches in reverse order, then verify checksums. Idempotent and
    resumable: a crashed rollback runs again from the batches still in the ledger."""
    rollback = Rollback.objects.select_related("run__target", "run__version").get(pk=rollback_id)
    run = rollback.run
    if rollback.status != RollbackStatus.RUNNING:
        return rollback
    target = connector_for(run.target)
    try:
        summary = rollback_run(target=target, run_id=run_ledger_id(run))
        after, differences = _verify(run, target)
    except EngineError as exc:
        Rollback.objects.filter(pk=rollback.pk).update(
            status=RollbackStatus.FAILED, error=str(exc), finished_at=timezone.now()
        )
        run_log(run, f"Rollback failed: {exc}", LogLevel.ERROR)
        rollback.refresh_from_db()
        return rollback
    status = RollbackStatus.MISMATCH if differences else RollbackStatus.VERIFIED
    with transaction.atomic():
        Rollback.objects.filter(pk=rollback.pk).update(
            status=status,
            finished_at=timezone.now(),
            batches_undone=summary.batches,
            rows_deleted=summary.deleted,
            rows_restored=summary.restored,
            checksums_after=after,
            error="" if not differences else f"Checksums differ from before the run: {differences}",
        )
        Run.objects.filter(pk=run.pk).update(status=RunStatus.ROLLED_BACK)
        Batch.objects.filter(run=run, status=BatchStatus.DONE).update(
            status=BatchStatus.ROLLED_BACK
        )
        LedgerEntry.objects.filter(batch__run=run).update(rolled_back_at=timezone.now())
        verdict = (
            "target checksums equal the pre-run values"
            if not differences
            else f"checksums differ on {', '.join(differences)}"
        )
        run_log(
            run,
            f"Rolled back {summary.batches} batches: {summary.deleted:,} rows deleted, "
            f"{summary.restored:,} restored; {verdict}.",
            LogLevel.INFO if not differences else LogLevel.ERROR,
        )
        transaction.on_commit(lambda: hooks.after_run(Run.objects.get(pk=run.pk)))
    rollback.refresh_from_db()
    return rollback
