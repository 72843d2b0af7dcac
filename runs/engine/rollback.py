"""Undo a run: roll its committed batches back from the ledger, newest first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    # batches of later-rolled-back runs undone first because they committed after this run's
    # first batch: (run id, batch id)
    others: list[tuple[str, str]] = field(default_factory=list)

    def add(self, result: RollbackResult) -> None:
        """Fold one batch's result into the totals."""
        self.results.append(result)
        self.batches += int(result.found)
        self.deleted += result.deleted
        self.restored += result.restored
        self.keymap_deleted += result.keymap_deleted


def rollback_run(
    *,
    target: Target,
    run_id: str,
    on_progress: ProgressFn | None = None,
    interleaved: Sequence[str] = (),
) -> RollbackSummary:
    """Undo every committed batch of ``run_id`` in reverse commit order, one transaction each.

    ``interleaved``: runs rolled back after this one (a rollback stack) whose batches may have
    committed after this run's first batch; those batches are undone too, in the one reverse
    commit order of the target's ledger, so the target goes back to this run's start.
    Resumable and idempotent: each undone batch leaves the ledger, so a rerun after a crash
    continues with what is left and a finished run rolls back to a no-op. Raises TransientError.
    """
    summary = RollbackSummary(run_id=run_id)
    if interleaved:
        order = target.ledger_order([run_id, *interleaved])
        first = next((i for i, (run, _) in enumerate(order) if run == run_id), len(order))
        pairs = list(reversed(order[first:]))
    else:
        pairs = [(run_id, b) for b in reversed(target.ledger_batches(run_id))]
    for done, (run, batch_id) in enumerate(pairs, start=1):
        result = target.rollback_batch(run, batch_id)
        if run == run_id:
            summary.add(result)
        else:
            summary.others.append((run, batch_id))
            summary.deleted += result.deleted
            summary.restored += result.restored
        if on_progress is not None:
            on_progress(done, len(pairs), result)
    return summary
