"""The error queue's refusal while a run is being rolled back.

A rollback supersedes its run's failed records in a transaction it keeps open while the target
is undone (``rollback_record.EarlyRecord``): the records stay locked until it ends. A queue
action on them would wait that long and then find them superseded, so every action checks
first and refuses at once, naming the run and the rollback. A stacked rollback's ``chain``
lists runs rolled back after it; its own undo already takes back their batches committed after
its run's first one, while they are not yet "rolling back": their records are refused too,
naming the rollback and the run it is of.
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


def chained_refusal(run_ids: set[int]) -> ConflictError | None:
    """The refusal for work on the records of a run in a running rollback's chain (the
    lowest such run), or None. Read-only, one small query (running rollbacks are few; their
    chains are read here, as validation.report_cancel.report_superseded does)."""
    running = Rollback.objects.filter(status=RollbackStatus.RUNNING).order_by("pk")
    for pk, head, chain in running.values_list("pk", "run_id", "chain"):
        chained = sorted(run_ids & set(chain))
        if chained:
            return ConflictError(
                f"Run #{chained[0]} is being rolled back by rollback #{pk} (of run #{head}); "
                "its failed records can be worked once it ends."
            )
    return None


def run_refuse_rolled_back_now(run: Run) -> None:
    """Raise ConflictError (409) when ``run`` (as read by the caller) is rolling back or in a
    running rollback's chain. Read-only."""
    if run.status == RunStatus.ROLLING_BACK:
        raise run_rolling_back_refusal(run)
    _refuse_chained({run.pk})


def _refuse_chained(run_ids: set[int]) -> None:
    refusal = chained_refusal(run_ids)
    if refusal is not None:
        raise refusal


def _refuse_rolling_back(run_ids: set[int]) -> None:
    rolling = Run.objects.filter(pk__in=run_ids, status=RunStatus.ROLLING_BACK).order_by("pk")
    run = rolling.first()
    if run is not None:
        raise run_rolling_back_refusal(run)
    _refuse_chained(run_ids)


def failed_records_refuse_rolling_back(records: QuerySet[FailedRecord], *, lock: bool) -> None:
    """Raise ConflictError (409) at once when a run the records belong to (or answer to) is
    being rolled back, or is in a running rollback's chain. ``lock`` (inside the caller's
    transaction): the finished runs among them are also locked (FOR NO KEY UPDATE), so a
    rollback requested meanwhile (of one of them, or chaining it) waits for the caller's short
    write instead of the caller for the whole rollback, and checked again.
    Read-only otherwise; the check comes before any lock, so it never waits on a rollback."""
    run_ids = _run_ids(records)
    _refuse_rolling_back(run_ids)
    if lock and run_ids:
        finished = Run.objects.filter(pk__in=run_ids, status__in=_FINISHED).order_by("pk")
        list(finished.select_for_update(no_key=True).values_list("pk", flat=True))
        _refuse_rolling_back(run_ids)  # requested between the check and the lock
