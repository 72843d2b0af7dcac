"""Source deletes: find the keys that left the source since they were loaded and apply the
entity's delete policy (ignore / delete / mark) in the target, ledgered for exact rollback.

The key-set difference runs against the target ledger's key map (every source key the plan
ever wrote there, with its target key) one page at a time, asking the source which of the
page's keys still exist: memory is bounded by the page size, not by the table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runs.engine.errors import EngineError
from runs.engine.snapshot import EntitySpec, PlanSnapshot

POLICIES = ("ignore", "delete", "mark")
NOW = "now"  # delete_mark_value meaning "the time the delete was applied"


@dataclass(frozen=True)
class DeleteResult:
    """What one delete batch did; ``already_done`` when it was committed before."""

    deleted: int = 0
    marked: int = 0
    already_done: bool = False


@dataclass
class DeleteOutcome:
    """Totals of apply_deletes: keys checked against the source, gone, and what was done."""

    checked: int = 0
    missing: int = 0
    deleted: int = 0
    marked: int = 0
    batches: list[str] = field(default_factory=list)

    @property
    def applied(self) -> int:
        """Rows the policy changed in the target (deleted + marked)."""
        return self.deleted + self.marked


class DeleteTarget(Protocol):
    """The target side deletes need (PostgreSQL and SQLite connectors): ``keymap_page`` (up to
    ``limit`` ledgered source keys of ``entity`` after ``after``, in key order) and
    ``delete_batch`` (the entity's delete policy applied to the target rows of
    ``source_keys`` and ledgered, in ONE transaction; idempotent per (run_id, batch_id))."""

    # fmt: off
    def keymap_page(
        self, namespace: str, entity: str, *, after: str | None, limit: int
    ) -> list[str]: ...
    def delete_batch(
        self, *, entity: EntitySpec, source_keys: Sequence[str], run_id: str, batch_id: str,
        namespace: str,
    ) -> DeleteResult: ...
    # fmt: on


def check_policy(entity: EntitySpec) -> None:
    """Raise EngineError when the entity's delete policy is unknown or incomplete. Pure."""
    if entity.delete_policy not in POLICIES:
        raise EngineError(
            f"entity {entity.name!r}: unknown delete policy {entity.delete_policy!r} "
            f"(one of {', '.join(POLICIES)})"
        )
    if entity.delete_policy == "mark" and not entity.delete_mark_column:
        raise EngineError(f"entity {entity.name!r}: delete policy 'mark' needs a mark column")


def delete_batch_id(prefix: str, keys: Sequence[str]) -> str:
    """A delete batch's ledger id: the prefix plus a digest of its keys, so a retry after a
    crash that re-finds the same keys gets the same id (and is skipped). Pure."""
    digest = hashlib.sha256("\x1f".join(keys).encode()).hexdigest()[:16]
    return f"{prefix}:del:{digest}"


def apply_deletes(
    *,
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    source: Any,
    target: Any,
    run_id: str,
    batch_prefix: str,
    page_size: int | None = None,
    dry_run: bool = False,
) -> DeleteOutcome:
    """Apply ``entity``'s delete policy to every ledgered key no longer in the source.

    Idempotent and resumable: each chunk of missing keys is one target transaction with a
    content-derived batch id; a rerun finds only what is left (or the same, already committed
    chunks). A dry run only counts. Raises EngineError (bad policy), SchemaError, TransientError.
    """
    check_policy(entity)
    outcome = DeleteOutcome()
    if entity.delete_policy == "ignore":
        return outcome
    size = max(1, int(page_size or snapshot.batch_size))
    after: str | None = None
    pending: list[str] = []
    while True:
        page = target.keymap_page(snapshot.plan, entity.name, after=after, limit=size)
        if not page:
            break
        after = page[-1]
        outcome.checked += len(page)
        found = source.fetch_keys(entity.source_table, entity.source_key, page)
        pending += [k for k in page if k not in found]
        while len(pending) >= size:
            _flush(snapshot, entity, target, run_id, batch_prefix, pending[:size], dry_run, outcome)
            pending = pending[size:]
    if pending:
        _flush(snapshot, entity, target, run_id, batch_prefix, pending, dry_run, outcome)
    return outcome


def _flush(
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    target: Any,
    run_id: str,
    prefix: str,
    keys: list[str],
    dry_run: bool,
    outcome: DeleteOutcome,
) -> None:
    outcome.missing += len(keys)
    if dry_run:
        return
    batch_id = delete_batch_id(prefix, keys)
    result = target.delete_batch(
        entity=entity, source_keys=keys, run_id=run_id, batch_id=batch_id, namespace=snapshot.plan
    )
    outcome.deleted += result.deleted
    outcome.marked += result.marked
    outcome.batches.append(batch_id)
