"""Where a dry run would have passed its plan's failure threshold (a load aborts there)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .enums import BatchStatus, RunMode
from .models import Run


@dataclass(frozen=True)
class ThresholdBreach:
    batch: int  # the batch's number in the run (Batch.seq)
    entity: str
    failed: int
    extracted: int
    threshold_pct: float

    @property
    def failure_pct(self) -> float:
        return self.failed * 100 / self.extracted

    @property
    def message(self) -> str:
        return (
            f"A load would have aborted at batch {self.batch}: failure rate "
            f"{self.failure_pct:.1f}% > threshold {self.threshold_pct:g}% "
            f"({self.failed:,} of {self.extracted:,} rows failed by then; entity {self.entity})."
        )

    def as_dict(self) -> dict:
        """The breach as the API reports it."""
        return {
            "batch": self.batch,
            "entity": self.entity,
            "failed": self.failed,
            "extracted": self.extracted,
            "failure_pct": round(self.failure_pct, 2),
            "threshold_pct": self.threshold_pct,
            "message": self.message,
        }


def threshold_breach(
    batches: Iterable[tuple[int, str, int, int]], threshold_pct: float
) -> ThresholdBreach | None:
    """The first batch after which the running failure rate passes ``threshold_pct``.

    ``batches`` are (seq, entity, extracted, failed) in the order they finished: the same
    running totals a load checks after each batch. Pure; None when the rate never passes.
    """
    extracted = failed = 0
    for seq, entity, batch_extracted, batch_failed in batches:
        extracted += batch_extracted
        failed += batch_failed
        if extracted and failed * 100 / extracted > threshold_pct:
            return ThresholdBreach(seq, entity, failed, extracted, float(threshold_pct))
    return None


def run_threshold_breach(run: Run) -> ThresholdBreach | None:
    """For a dry run: where a load of the same version would have aborted on the failure
    threshold (batches in finishing order); None for other modes or when it never passes."""
    if run.mode != RunMode.DRY_RUN:
        return None
    limit = float(run.version.snapshot.get("failure_threshold_pct", 100.0))
    rows = (
        run.batches.filter(status=BatchStatus.DONE)
        .order_by("finished_at", "seq")
        .values_list("seq", "entity", "extracted", "failed")
    )
    return threshold_breach(rows, limit)
