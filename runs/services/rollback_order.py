"""Rollbacks form a stack: a run is undone only when no run that is not rolled back wrote to
any of the same target tables after it started writing, by the commit order of the ledger
entries (its before-images would be restored over the later rows, and the later run's own
before-images would then put the older values back)."""

from __future__ import annotations

from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from migration_planner.lib.errors import ConflictError
from runs.enums import RunMode, RunStatus
from runs.models import Batch, LedgerEntry, Run

from .state import run_entities

# A later run in one of these statuses may still write (or is being undone): it blocks too.
WRITING = (
    RunStatus.QUEUED,
    RunStatus.RUNNING,
    RunStatus.PAUSED,
    RunStatus.CANCELLING,
    RunStatus.ROLLING_BACK,
)


def run_tables(run: Run) -> set[str]:
    """Target tables the run writes (its entities' tables)."""
    return {e.target_table for e in run_entities(run)}


def _live_entries():
    return LedgerEntry.objects.filter(batch__run=OuterRef("pk"), rolled_back_at__isnull=True)


def run_first_commit(run: Run):
    """When the run's first batch still in the target committed (None: none is)."""
    return LedgerEntry.objects.filter(batch__run=run, rolled_back_at__isnull=True).aggregate(
        first=Min("committed_at")
    )["first"]


def run_stack_position(run: Run) -> tuple:
    """Sort key of a rollback stack, newest last: the run's first live ledger commit, or its
    creation for a run that wrote nothing."""
    return (run_first_commit(run) or run.created_at, run.pk)


def run_rollback_blockers(*, run: Run) -> list[Run]:
    """Runs on the same target, not rolled back, that must be undone before ``run`` because
    they wrote one of its tables after it started writing — by the commit order of the
    ledger entries, not by when the runs were created (two runs whose batches interleave
    block each other) — newest first. A run without ledger entries (it wrote nothing: every
    row unchanged, a delta with nothing new, or still queued/running) blocks when it was
    created later and worked or may still write: its own rollback proves its pre-run
    checksum, so it goes first. Read-only."""
    tables = run_tables(run)
    since = run_first_commit(run) or run.created_at
    worked = Batch.objects.filter(run=OuterRef("pk"))
    created_later = Q(created_at__gt=run.created_at) | Q(created_at=run.created_at, pk__gt=run.pk)
    candidates = (
        Run.objects.filter(target_id=run.target_id)
        .exclude(pk=run.pk)
        .exclude(mode=RunMode.DRY_RUN)
        .exclude(status=RunStatus.ROLLED_BACK)
        .filter(
            Q(Exists(_live_entries().filter(committed_at__gt=since)))
            | (
                ~Q(Exists(_live_entries()))
                & created_later
                & (Q(Exists(worked)) | Q(status__in=(*WRITING, RunStatus.SUCCEEDED)))
            )
        )
        .select_related("launched_by", "version")
    )
    later = [r for r in candidates if run_tables(r) & tables]
    return sorted(later, key=run_stack_position, reverse=True)


def run_rollback_stack(*, run: Run) -> list[Run]:
    """``run`` and every run that must be undone before it, transitively (a blocker's own
    blockers too), newest first by the ledger's commit order. Read-only."""
    members = {run.pk: run}
    frontier = [run]
    while frontier:
        for blocker in run_rollback_blockers(run=frontier.pop()):
            if blocker.pk not in members:
                members[blocker.pk] = blocker
                frontier.append(blocker)
    return sorted(members.values(), key=run_stack_position, reverse=True)


def run_summary(run: Run) -> str:
    """ "run #43 (load) by operator at 2026-12-06 12:03, 1,200 rows written"."""
    who = run.launched_by.get_username() if run.launched_by else "the system"
    when = timezone.localtime(run.started_at or run.created_at)
    return (
        f"run #{run.pk} ({run.get_mode_display().lower()}, {run.get_status_display().lower()}) "
        f"by {who} at {when:%Y-%m-%d %H:%M}, {run.inserted + run.updated:,} rows written"
    )


def blocker_extra(blockers: list[Run]) -> dict:
    """The API body's list of the later runs (newest first)."""
    return {
        "later_runs": [
            {
                "run": r.pk,
                "uuid": str(r.uuid),
                "mode": r.mode,
                "status": r.status,
                "launched_by": r.launched_by.get_username() if r.launched_by else None,
                "started_at": (r.started_at or r.created_at).isoformat(),
                "rows": r.inserted + r.updated,
            }
            for r in blockers
        ],
        "rollback_all": True,
    }


class RollbackOrderError(ConflictError):
    """Later runs wrote the same tables: they must be rolled back first (newest first)."""

    def __init__(self, run: Run, blockers: list[Run]) -> None:
        listed = "; ".join(run_summary(r) for r in blockers)
        super().__init__(
            f"Run #{run.pk} cannot be rolled back yet: {len(blockers)} later run(s) wrote to "
            f"the same tables and must be rolled back first, newest first: {listed}. "
            "Roll them all back (newest first, each verified) to undo this run too.",
            field="run",
            extra=blocker_extra(blockers),
        )
        self.blockers = blockers
