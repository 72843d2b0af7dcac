"""Apply committed source transactions to the target: the same transform, ledger and error
queue as a batch, one target transaction per group together with the slot's checkpoint.

Exactly once: the checkpoint (the LSN of the last applied commit) is written in the target
transaction that writes the rows, and a group whose end is not past it is skipped. Within a
group each key's changes collapse to its last one (upsert of the newest row, or delete), in
commit order, so the target ends where the source did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runs.engine.batch import BatchOutcome, process_frame, source_columns
from runs.engine.cdc.decoding import UNCHANGED_TOAST, Change
from runs.engine.connectors.base import text_frame
from runs.engine.errors import EngineError
from runs.engine.snapshot import EntitySpec, PlanSnapshot
from runs.engine.transform import KEY_SEPARATOR

_DDL = """
CREATE TABLE IF NOT EXISTS mp_ledger.cdc_checkpoint (
    slot text PRIMARY KEY, run_id text NOT NULL, lsn bigint NOT NULL,
    counters jsonb NOT NULL DEFAULT '{}', updated_at timestamptz NOT NULL DEFAULT now());
"""


@dataclass(frozen=True)
class Txn:
    """One committed source transaction: its changes and commit position/time."""

    end_lsn: int
    at: datetime | None
    changes: tuple[Change, ...]


@dataclass
class Counters:
    """What the sync applied so far (kept in the target checkpoint, so exact after a crash)."""

    events: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> op -> n
    extracted: int = 0
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    failed: int = 0
    filtered: int = 0
    duplicates: int = 0
    deleted: int = 0
    deletes_ignored: int = 0
    transactions: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Counters:
        """Inverse of to_dict (unknown keys ignored)."""
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def total_events(self) -> int:
        """Row changes seen on the plan's tables."""
        return sum(sum(ops.values()) for ops in self.events.values())


@dataclass
class GroupResult:
    """What one apply did: outcomes per entity (failures for the error queue), the checkpoint."""

    lsn: int
    counters: Counters
    outcomes: list[tuple[str, BatchOutcome]] = field(default_factory=list)
    skipped: bool = False  # already applied (the checkpoint was past it)


def checkpoint_read(target: Any, slot: str) -> tuple[int, Counters] | None:
    """(LSN, counters) the target holds for ``slot``, or None before the first apply."""
    target.ensure_ledger()
    with target.transaction() as cur:
        cur.execute(_DDL)
        cur.execute("SELECT lsn, counters FROM mp_ledger.cdc_checkpoint WHERE slot = %s", (slot,))
        row = cur.fetchone()
    return None if row is None else (int(row[0]), Counters.from_dict(row[1]))


def checkpoint_drop(target: Any, slot: str) -> None:
    """Forget the slot's checkpoint (the sync ended). Idempotent."""
    target.ensure_ledger()
    with target.transaction() as cur:
        cur.execute(_DDL)
        cur.execute("DELETE FROM mp_ledger.cdc_checkpoint WHERE slot = %s", (slot,))


def _table_names(entity: EntitySpec) -> set[tuple[str | None, str]]:
    schema, _, table = entity.source_table.rpartition(".")
    return {(schema or None, table)}


class Applier:
    """Applies groups of committed transactions of one sync to its target."""

    def __init__(
        self,
        *,
        snapshot: PlanSnapshot,
        source: Any,
        target: Any,
        run_id: str,
        slot: str,
        default_schema: str = "public",
    ) -> None:
        self.snapshot, self.source, self.target = snapshot, source, target
        self.run_id, self.slot = run_id, slot
        self._by_table: dict[tuple[str, str], EntitySpec] = {}
        for entity in snapshot.entities:
            for schema, table in _table_names(entity):
                self._by_table[(schema or default_schema, table)] = entity
        for entity in snapshot.entities:
            if entity.load_mode != "upsert":
                raise EngineError(
                    f"entity {entity.name!r} loads with insert: change data capture replays "
                    "updates, so every entity needs load_mode upsert on an external id"
                )

    def entity_for(self, change: Change) -> EntitySpec | None:
        """The plan's entity reading the changed table, or None (not migrated)."""
        return self._by_table.get((change.schema, change.table))

    def apply(self, txns: Sequence[Txn], counters: Counters) -> GroupResult:
        """Apply ``txns`` (in commit order) + checkpoint in ONE target transaction. Idempotent:
        a group not past the checkpoint is skipped. Raises EngineError, TransientError."""
        end = txns[-1].end_lsn
        counters = Counters.from_dict(json.loads(json.dumps(counters.to_dict())))  # a copy
        upserts, deletes = self._collapse(txns, counters)
        result = GroupResult(lsn=end, counters=counters)
        self.target.ensure_ledger()
        with self.target.transaction() as cur:
            cur.execute(_DDL)
            cur.execute(
                "SELECT lsn FROM mp_ledger.cdc_checkpoint WHERE slot = %s FOR UPDATE", (self.slot,)
            )
            row = cur.fetchone()
            if row is not None and int(row[0]) >= end:
                result.skipped = True
                return result
            for entity in self.snapshot.entities_in_load_order():
                rows = upserts.get(entity.name)
                if rows:
                    result.outcomes.append((entity.name, self._upsert(entity, rows, end)))
            for entity in reversed(self.snapshot.entities_in_load_order()):
                keys = deletes.get(entity.name)
                if keys and entity.delete_policy == "ignore":
                    counters.deletes_ignored += len(keys)
                elif keys:
                    result.outcomes.append((entity.name, self._delete(entity, keys, end)))
            self._count(result, len(txns))
            cur.execute(
                "INSERT INTO mp_ledger.cdc_checkpoint (slot, run_id, lsn, counters) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (slot) DO UPDATE SET lsn = EXCLUDED.lsn, "
                "counters = EXCLUDED.counters, updated_at = now()",
                (self.slot, self.run_id, end, json.dumps(counters.to_dict())),
            )
        return result

    def _collapse(
        self, txns: Sequence[Txn], counters: Counters
    ) -> tuple[dict[str, dict[str, dict]], dict[str, dict[str, None]]]:
        """Per entity: key -> newest row to upsert, and keys to delete (last change wins)."""
        upserts: dict[str, dict[str, dict]] = {}
        deletes: dict[str, dict[str, None]] = {}
        for txn in txns:
            for change in txn.changes:
                entity = self.entity_for(change)
                if entity is None:
                    continue
                ops = counters.events.setdefault(f"{change.schema}.{change.table}", {})
                ops[change.op] = ops.get(change.op, 0) + 1
                ups, dels = upserts.setdefault(entity.name, {}), deletes.setdefault(entity.name, {})
                if change.op == "delete":
                    key = _key(entity, change.values, change)
                    ups.pop(key, None)
                    dels[key] = None
                    continue
                values = _full_row(entity, change)
                key = _key(entity, values, change)
                if change.old_key is not None:
                    old = _key(entity, change.old_key, change, strict=False)
                    if old is not None and old != key:  # the key itself changed
                        ups.pop(old, None)
                        dels[old] = None
                dels.pop(key, None)
                ups[key] = values
        return upserts, deletes

    def _upsert(self, entity: EntitySpec, rows: dict[str, dict], end: int) -> BatchOutcome:
        columns = source_columns(entity)
        data = {c: [r.get(c) for r in rows.values()] for c in columns}
        return process_frame(
            snapshot=self.snapshot,
            entity=entity,
            frame=text_frame(columns, data),
            source=self.source,
            target=self.target,
            run_id=self.run_id,
            batch_id=f"cdc:{end:x}:{entity.name}",
            skip_unchanged=True,
        )

    def _delete(self, entity: EntitySpec, keys: dict[str, None], end: int) -> BatchOutcome:
        done = self.target.delete_batch(
            entity=entity,
            source_keys=list(keys),
            run_id=self.run_id,
            batch_id=f"cdc:{end:x}:{entity.name}:del",
            namespace=self.snapshot.plan,
        )
        return BatchOutcome(deleted=done.deleted + done.marked)

    @staticmethod
    def _count(result: GroupResult, transactions: int) -> None:
        c = result.counters
        c.transactions += transactions
        for _, out in result.outcomes:
            for name in ("extracted", "loaded", "inserted", "updated", "failed", "filtered"):
                setattr(c, name, getattr(c, name) + getattr(out, name))
            c.duplicates += out.duplicates
            c.deleted += out.deleted


def _full_row(entity: EntitySpec, change: Change) -> dict[str, Any]:
    """The new row's values as text; unchanged TOASTed values come from the old row (REPLICA
    IDENTITY FULL) or the change is refused with what to set."""
    values = dict(change.values)
    for name, value in values.items():
        if value is UNCHANGED_TOAST:
            old = (change.old_key or {}).get(name, UNCHANGED_TOAST)
            if old is UNCHANGED_TOAST:
                raise EngineError(
                    f"an update of {change.schema}.{change.table} left the large value of "
                    f"{name!r} out of the change stream: ALTER TABLE {change.table} REPLICA "
                    "IDENTITY FULL on the source so the stream carries it"
                )
            values[name] = old
    return values


def _key(entity: EntitySpec, values: dict[str, Any], change: Change, *, strict: bool = True) -> Any:
    try:
        parts = [values[c] for c in entity.source_key]
    except KeyError:
        if not strict:
            return None
        raise EngineError(
            f"a {change.op} on {change.schema}.{change.table} does not carry the source key "
            f"{', '.join(entity.source_key)}: make it the primary key or set REPLICA IDENTITY "
            "FULL on the source table"
        ) from None
    return KEY_SEPARATOR.join("" if p is None else str(p) for p in parts)
