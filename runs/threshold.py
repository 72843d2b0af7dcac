"""Where a dry run would have passed its plan's failure threshold (a load aborts there), or
that it stayed under it (a load would have gone through)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .enums import BatchStatus, RunMode, RunStatus
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


@dataclass(frozen=True)
class ThresholdClear:
    failed: int
    extracted: int
    threshold_pct: float

    @property
    def failure_pct(self) -> float:
        return self.failed * 100 / self.extracted if self.extracted else 0.0

    @property
    def message(self) -> str:
        return (
            f"A load would have gone through: failure rate {self.failure_pct:.1f}% ≤ threshold "
            f"{self.threshold_pct:g}% ({self.failed:,} of {self.extracted:,} rows failed)."
        )

    def as_dict(self) -> dict:
        """The outcome as the API reports it."""
        return {
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


def _done_batches(run: Run) -> list[tuple[int, str, int, int]]:
    return list(
        run.batches.filter(status=BatchStatus.DONE)
        .order_by("finished_at", "seq")
        .values_list("seq", "entity", "extracted", "failed")
    )


def _limit(run: Run) -> float:
    return float(run.version.snapshot.get("failure_threshold_pct", 100.0))


def run_threshold_breach(run: Run) -> ThresholdBreach | None:
    """For a dry run: where a load of the same version would have aborted on the failure
    threshold (batches in finishing order); None for other modes or when it never passes."""
    if run.mode != RunMode.DRY_RUN:
        return None
    return threshold_breach(_done_batches(run), _limit(run))


def run_threshold_clear(run: Run) -> ThresholdClear | None:
    """For a dry run that succeeded and never passed its failure threshold: the final failure
    rate under it (a load would have gone through the threshold). None otherwise. Read-only."""
    if run.mode != RunMode.DRY_RUN or run.status != RunStatus.SUCCEEDED:
        return None
    rows = _done_batches(run)
    limit = _limit(run)
    if threshold_breach(rows, limit) is not None:
        return None
    return ThresholdClear(sum(r[3] for r in rows), sum(r[2] for r in rows), limit)
