"""The error queue's refusal while a run is being rolled back.

A rollback supersedes its run's failed records in a transaction it keeps open while the target
is undone (``rollback_record.EarlyRecord``): the records stay locked until it ends. A queue
action on them would wait that long and then find them superseded, so every action checks
first and refuses at once, naming the run and the rollback.
"""

from __future__ import annotations

from django.db.models import QuerySet

from migration_planner.lib.errors import ConflictError
from runs.enums import RollbackStatus, RunStatus
from runs.models import CarriedBatch, FailedRecord, Rollback, Run

from .carry_refs import carries_any

# finished runs a rollback may be requested for (rollback.ROLLBACKABLE; not imported: cycle)
_FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def run_rolling_back_refusal(run: Run) -> ConflictError:
    """The refusal for work on the records of ``run``, which is rolling back. Read-only."""
    rollback = (
        Rollback.objects.filter(run=run, status=RollbackStatus.RUNNING)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    by = f" by rollback #{rollback}" if rollback else ""
    return ConflictError(
        f"Run #{run.pk} is being rolled back{by}; its failed records can be worked once it ends."
    )


def _run_ids(records: QuerySet[FailedRecord]) -> set[int]:
    """The runs the records belong to, and those that carry their batches by reference (a
    queue action copies such a record into the run answering for it)."""
    ids = set(records.order_by().values_list("run_id", flat=True).distinct())
    if carries_any():
        batches = records.order_by().values("batch_id")
        ids |= set(
            CarriedBatch.objects.filter(source_batch_id__in=batches, rolled_back=False)
            .values_list("run_id", flat=True)
            .distinct()
        )
    return ids


def _refuse_rolling_back(run_ids: set[int]) -> None:
    rolling = Run.objects.filter(pk__in=run_ids, status=RunStatus.ROLLING_BACK).order_by("pk")
    run = rolling.first()
    if run is not None:
        raise run_rolling_back_refusal(run)


def failed_records_refuse_rolling_back(records: QuerySet[FailedRecord], *, lock: bool) -> None:
    """Raise ConflictError (409) at once when a run the records belong to (or answer to) is
    being rolled back. ``lock`` (inside the caller's transaction): the finished runs among them
    are also locked (FOR NO KEY UPDATE), so a rollback requested meanwhile waits for the
    caller's short write instead of the caller for the whole rollback, and checked again.
    Read-only otherwise; the check comes before any lock, so it never waits on a rollback."""
    run_ids = _run_ids(records)
    _refuse_rolling_back(run_ids)
    if lock and run_ids:
        finished = Run.objects.filter(pk__in=run_ids, status__in=_FINISHED).order_by("pk")
        list(finished.select_for_update(no_key=True).values_list("pk", flat=True))
        _refuse_rolling_back(run_ids)  # requested between the check and the lock
