"""Rollbacks form a stack: a run is undone only when no later run that is not rolled back
wrote to any of the same target tables (its before-images would be restored over the later
run's rows, and the later run's own before-images would then put the older values back)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from migration_planner.lib.errors import ConflictError
from runs.enums import RunMode, RunStatus
from runs.models import Batch, Run

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


def run_rollback_blockers(*, run: Run) -> list[Run]:
    """Later runs on the same target, not rolled back, that wrote (or may still write) one of
    ``run``'s tables — newest first. A later run that succeeded without writing (every row
    unchanged, or a delta with nothing new) counts too: its own rollback proves its pre-run
    checksum, so it goes first. Failed or cancelled runs without a batch never wrote: they
    do not count. Read-only."""
    tables = run_tables(run)
    worked = Batch.objects.filter(run=OuterRef("pk"))
    later = (
        Run.objects.filter(target_id=run.target_id)
        .filter(Q(created_at__gt=run.created_at) | Q(created_at=run.created_at, pk__gt=run.pk))
        .exclude(mode=RunMode.DRY_RUN)
        .exclude(status=RunStatus.ROLLED_BACK)
        .filter(Q(Exists(worked)) | Q(status__in=(*WRITING, RunStatus.SUCCEEDED)))
        .select_related("launched_by", "version")
        .order_by("-created_at", "-pk")
    )
    return [r for r in later if run_tables(r) & tables]


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
