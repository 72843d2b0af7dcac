"""Undo a run: roll its committed batches back from the ledger, newest first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from runs.engine.connectors.base import RollbackResult, Target

# on_progress(done, total, result_of_the_batch_just_undone)
ProgressFn = Callable[[int, int, RollbackResult], None]


@dataclass
class RollbackSummary:
    """Totals of a rollback_run; ``batches`` counts batches that were still recorded."""

    run_id: str
    batches: int = 0
    deleted: int = 0
    restored: int = 0
    keymap_deleted: int = 0
    results: list[RollbackResult] = field(default_factory=list)

    def add(self, result: RollbackResult) -> None:
        """Fold one batch's result into the totals."""
        self.results.append(result)
        self.batches += int(result.found)
        self.deleted += result.deleted
        self.restored += result.restored
        self.keymap_deleted += result.keymap_deleted


def rollback_run(
    *, target: Target, run_id: str, on_progress: ProgressFn | None = None
) -> RollbackSummary:
    """Undo every committed batch of ``run_id`` in reverse commit order, one transaction each.

    Resumable and idempotent: each undone batch leaves the ledger, so a rerun after a crash
    continues with what is left and a finished run rolls back to a no-op. Raises TransientError.
    """
    summary = RollbackSummary(run_id=run_id)
    batch_ids = list(reversed(target.ledger_batches(run_id)))
    for done, batch_id in enumerate(batch_ids, start=1):
        result = target.rollback_batch(run_id, batch_id)
        summary.add(result)
        if on_progress is not None:
            on_progress(done, len(batch_ids), result)
    return summary
