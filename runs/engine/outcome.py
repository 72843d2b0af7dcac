"""What one batch did: its counts and failures (``BatchOutcome``), stored with the batch's
ledger record so a retried, already committed batch reports the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runs.engine.connectors.base import LoadResult
from runs.engine.errors import EngineError
from runs.engine.failure_block import BlockFailure, FailureMetas, failure_metas
from runs.engine.transform import FieldError, RowFailure

_COUNTS = (
    "extracted",
    "loaded",
    "inserted",
    "updated",
    "failed",
    "filtered",
    "duplicates",
    "deleted",
)


@dataclass
class BatchOutcome:
    """Counts and failures of one batch; extracted == loaded + failed + filtered + duplicates."""

    extracted: int = 0
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    failed: int = 0
    filtered: int = 0
    duplicates: int = 0
    deleted: int = 0  # target rows deleted or marked because their source row was deleted
    failures: list[RowFailure] = field(default_factory=list)
    already_done: bool = False
    unchanged: int = 0  # loaded rows that were already identical in the target (not written)
    skipped: int = 0  # of those, rows skipped before the transform (runs.engine.unchanged)
    # failed rows not transformed again: source key -> the earlier run's open failed record
    # (same source hash and rules; counted in ``failed``, copied by the app, not in failures)
    carried_failures: dict[str, Any] = field(default_factory=dict)
    # or all the failures of an earlier batch carried by reference: {"batch", "count"}
    carried_reference: dict[str, Any] | None = None
    rules_hash: str = ""  # the entity's rules hash when the batch kept row state, else ""

    def to_meta(self) -> dict[str, Any]:
        """JSON-able form stored as the ledger batch record's result_meta."""
        meta: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS}
        meta["skipped"] = self.skipped
        meta["carried_failures"] = self.carried_failures
        meta["carried_reference"] = self.carried_reference
        meta["rules_hash"] = self.rules_hash
        # a block's failures (failure_block) as a view: the ledger packs their JSON
        block = any(isinstance(f, BlockFailure) and f.untouched for f in self.failures)
        meta["failures"] = (FailureMetas if block else failure_metas)(self.failures)
        return meta

    @classmethod
    def from_meta(cls, meta: dict[str, Any], load: LoadResult | None = None) -> BatchOutcome:
        """Rebuild from a stored result_meta (a retried, already committed batch)."""
        failures = [
            RowFailure(
                source_key=f["source_key"],
                source_row=f["source_row"],
                transformed_row=f["transformed_row"],
                stage=f["stage"],
                errors=[FieldError(**e) for e in f["errors"]],
                source_hash=f.get("source_hash") or "",
            )
            for f in meta.get("failures", [])
        ]
        counts: dict[str, Any] = {name: int(meta.get(name, 0)) for name in (*_COUNTS, "skipped")}
        counts["carried_failures"] = dict(meta.get("carried_failures") or {})
        counts["carried_reference"] = meta.get("carried_reference")
        counts["rules_hash"] = meta.get("rules_hash") or ""
        if load is not None:
            counts.update(inserted=load.inserted, updated=load.updated)
            return cls(**counts, failures=failures, already_done=True, unchanged=load.unchanged)
        return cls(**counts, failures=failures, already_done=True)


def check_accounting(outcome: BatchOutcome) -> None:
    """Raise EngineError unless extracted == loaded + failed + filtered + duplicates."""
    accounted = outcome.loaded + outcome.failed + outcome.filtered + outcome.duplicates
    if accounted != outcome.extracted:
        raise EngineError(
            f"batch accounting broken: extracted {outcome.extracted}, accounted {accounted}"
        )
