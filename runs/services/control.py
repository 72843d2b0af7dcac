"""Pause, resume and cancel a running run."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from migration_planner.lib.roles import refusal_text
from runs.enums import BatchStatus, LogLevel, RunMode, RunStatus
from runs.models import Batch, Run

from .dispatch import enqueue_batches
from .logging import run_log
from .state import phase_batches, run_phases

PAST = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}


def _change(run: Run, user, allowed_from: tuple[str, ...], to: str, verb: str) -> Run:
    if user is not None and not user.has_perm("mp.control_run"):
        raise PermissionDeniedError(refusal_text("mp.control_run"))
    production = run.mode != RunMode.DRY_RUN and run.target.is_production
    if production and user is not None and not user.has_perm("mp.launch_production_run"):
        raise PermissionDeniedError(
            f"Only an operator may {verb} a run on the production target “{run.target.name}”."
        )
    if not Run.objects.filter(pk=run.pk, status__in=allowed_from).update(status=to):
        run.refresh_from_db(fields=["status"])
        raise ApplicationError(f"A {run.get_status_display().lower()} run cannot be {PAST[verb]}.")
    audit_record(
        action=AuditAction.RUN_CONTROL,
        actor=user,
        obj=run,
        before={"status": run.status},
        after={"status": to},
    )
    run.status = to
    run_log(
        run, f"Run {PAST[verb]} by {getattr(user, 'username', 'the system')}.", LogLevel.WARNING
    )
    return run


@transaction.atomic
def run_pause(*, run: Run, user) -> Run:
    """Stop claiming new batches; running ones finish. Raises ApplicationError unless running
    (and for a sync run: it streams in one task, so it is stopped or cancelled instead)."""
    if run.mode == RunMode.SYNC:
        raise ApplicationError("A sync cannot be paused: stop it (drain & finish) or cancel it.")
    return _change(run, user, (RunStatus.RUNNING,), RunStatus.PAUSED, "pause")


@transaction.atomic
def run_resume(*, run: Run, user) -> Run:
    """Re-queue the current entity's pending batches. Raises ApplicationError unless paused."""
    run = _change(run, user, (RunStatus.PAUSED,), RunStatus.RUNNING, "resume")
    run.refresh_from_db(fields=["phase"])
    if run.phase < len(run_phases(run)):
        ids = list(
            phase_batches(run, run.phase)
            .filter(status=BatchStatus.PENDING)
            .values_list("pk", flat=True)
        )
        enqueue_batches(ids)
        if not ids:
            from .execution import _advance

            transaction.on_commit(lambda: _advance(run))
    return run


@transaction.atomic
def run_cancel(*, run: Run, user) -> Run:
    """Cancel pending batches (and running ones whose lease expired); the run ends once the
    running batches finish or their leases expire (the supervisor). Committed batches stay in
    the target (roll back to undo them). Raises ApplicationError for a finished run."""
    run = _change(
        run,
        user,
        (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED),
        RunStatus.CANCELLING,
        "cancel",
    )
    Batch.objects.filter(run=run, status=BatchStatus.PENDING).update(status=BatchStatus.CANCELLED)
    # A running batch whose lease already expired has no worker left to report: cancel it now
    # (the supervisor does the same for leases that expire later).
    Batch.objects.filter(
        run=run, status=BatchStatus.RUNNING, lease_until__lt=timezone.now()
    ).update(status=BatchStatus.CANCELLED, lease_until=None, error="cancelled: worker lost")
    from .execution import _finish_if_idle

    transaction.on_commit(lambda: _finish_if_idle(None, run=Run.objects.get(pk=run.pk)))
    return run
