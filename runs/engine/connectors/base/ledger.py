"""What every SQL target's ledger does alike, written once: the batch record's common columns,
a stored batch's result, key-map lookups both ways and paging, and the ledger methods whose
SQL differs only in dialect (``ops``). The ledger's tables are ``{L}batch``, ``{L}row``,
``{L}keymap``, ``{L}deleted`` (``mp_ledger.`` schema on PostgreSQL, ``mp_ledger_`` prefix on
SQLite)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from .dialect import Clause, Dialect, affected, fetch
from .results import LoadResult, RollbackResult


def load_counts(result: LoadResult) -> dict[str, int]:
    """The counts a batch record keeps of its load (``load_result``). Pure."""
    return {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}


def stored_result(load: Mapping[str, Any], meta: dict[str, Any]) -> LoadResult:
    """The LoadResult of a batch committed before (``already_done``), from its record. Pure."""
    return LoadResult(
        inserted=int(load.get("inserted", 0)),
        updated=int(load.get("updated", 0)),
        unchanged=int(load.get("unchanged", 0)),
        already_done=True,
        result_meta=meta,
    )


def batch_record(
    *, run_id: str, batch_id: str, entity: str, table: str, key_column: str, meta: Any, load: Any
) -> dict[str, Any]:
    """The columns every target's batch record holds (``meta`` and ``load`` as JSON). Pure."""
    return {
        "run_id": run_id,
        "batch_id": batch_id,
        "entity": entity,
        "target_table": table,
        "target_key_column": key_column,
        "result_meta": json.dumps(meta, default=_listed),
        "load_result": json.dumps(load),
    }


def insert_row(
    ops: Dialect, table: str, values: Mapping[str, Any], casts: Mapping[str, str] | None = None
) -> Clause:
    """INSERT of one row into ledger table ``table``: column -> value; ``casts``: column ->
    what follows its placeholder (PostgreSQL's ``::text[]``). Pure."""
    marks = ", ".join(ops.param + (casts or {}).get(c, "") for c in values)
    names = ", ".join(values)
    return ops.sql("INSERT INTO {L}" + table + f" ({names}) VALUES ({marks})"), list(
        values.values()
    )


class SqlLedger:
    """The ledger methods whose SQL differs only in dialect. Hooks: ``_keymap_pending`` (move
    key-map pairs kept elsewhere into the key map first), ``_batch_tx`` (a batch's locked
    write transaction), ``_stored_result``, ``_undo_rows``, ``_undo_deletes``; ``_queries``
    and ``_tx`` from the plumbing."""

    ops: Dialect
    ensure_ledger: Any
    _queries: Any
    _tx: Any
    _table: Any
    _batch_tx: Any
    _stored_result: Any
    _undo_rows: Any  # (handle, info, key, run_id, batch_id) -> (deleted, restored)
    _undo_deletes: Any  # (handle, info, key, run_id, batch_id) -> restored
    # The ledger tables holding a batch's rows, cleared by its rollback (the key map first).
    batch_tables: tuple[str, ...] = ("keymap", "row", "batch")

    def batch_result(self, run_id: str, batch_id: str) -> LoadResult | None:
        """``Ledger.batch_result``. Read-only."""
        self.ensure_ledger()
        with self._tx() as handle:
            return self._stored_result(handle, run_id, batch_id)

    def keymap_lookup(
        self, namespace: str, entity: str, source_keys: Sequence[str]
    ) -> dict[str, str]:
        """``Ledger.keymap_lookup``."""
        return self._keymap(namespace, entity, "source_key", "target_key", source_keys)

    @contextmanager
    def keymap_resolved(
        self, namespace: str, entity: str, source_keys: Iterable[Sequence[str]]
    ) -> Iterator[Callable[[Sequence[str]], dict[str, str]]]:
        """A lookup (source key -> target key, as ``keymap_lookup``) for keys among
        ``source_keys`` (blocks of keys, all known up front). Here ``keymap_lookup`` itself;
        PostgreSQL resolves them at once, its pending pairs left pending (postgres/keymap.py)."""
        yield partial(self.keymap_lookup, namespace, entity)

    def keymap_sources(
        self, namespace: str, entity: str, target_keys: Sequence[str]
    ) -> dict[str, str]:
        """Target key -> the source key (business key) the key map records for it; keys it
        does not know are absent. Read-only but for moving pending key-map pairs in."""
        return self._keymap(namespace, entity, "target_key", "source_key", target_keys)

    def keymap_page(
        self, namespace: str, entity: str, *, after: str | None, limit: int
    ) -> list[str]:
        """Up to ``limit`` ledgered source keys of ``entity`` after ``after``, in key order."""
        self.ensure_ledger()
        self._keymap_pending(namespace, entity)
        query = self.ops.sql(
            "SELECT source_key FROM {L}keymap WHERE namespace = {P} AND entity = {P} "
            "AND ({P} IS NULL OR source_key > {P}) ORDER BY source_key LIMIT {P}"
        )
        rows = self._queries((query, [namespace, entity, after, after, int(limit)]))[0]
        return [r[0] for r in rows]

    def rollback_batch(self, run_id: str, batch_id: str) -> RollbackResult:
        """``Ledger.rollback_batch``: in ONE transaction holding the batch's lock; idempotent
        (then all zeros). Hooks: ``_undo_rows`` (written rows), ``_undo_deletes``."""
        self.ensure_ledger()
        ops, ids = self.ops, [run_id, batch_id]
        tables = ops.sql("SELECT DISTINCT target_table FROM {L}batch WHERE run_id = {P}")
        for (table,) in self._queries((tables, [run_id]))[0]:
            self._table(table)  # never introspect inside the undo transaction
        match = " WHERE run_id = {P} AND batch_id = {P}"
        with self._batch_tx(run_id, batch_id) as handle:
            rec = fetch(
                handle, ops.sql("SELECT target_table, target_key_column FROM {L}batch" + match), ids
            )
            if not rec:
                return RollbackResult(batch_id=batch_id)
            info = self._table(rec[0][0])
            tk = info.column(rec[0][1])
            rows = fetch(handle, ops.sql("SELECT count(*) FROM {L}" + ops.ledger_rows + match), ids)
            deleted, restored = self._undo_rows(handle, info, tk, run_id, batch_id)
            restored += self._undo_deletes(handle, info, tk, run_id, batch_id)
            counts = [
                affected(handle, ops.sql("DELETE FROM {L}" + t + match), ids)
                for t in self.batch_tables
            ]
        return RollbackResult(
            batch_id=batch_id,
            deleted=deleted,
            restored=restored,
            keymap_deleted=counts[0],
            ledger_rows_deleted=int(rows[0][0]),
            found=True,
        )

    def _keymap(
        self, namespace: str, entity: str, by: str, to: str, keys: Sequence[str]
    ) -> dict[str, str]:
        """``by`` -> ``to`` of the key-map entries of ``entity`` whose ``by`` is in ``keys``."""
        self.ensure_ledger()
        self._keymap_pending(namespace, entity)
        template = (
            f"SELECT {by}, {to} FROM {{L}}keymap WHERE namespace = {{P}} AND entity = {{P}} "
            f"AND {by} {{keys}}"
        )
        queries = self.ops.in_keys(template, [namespace, entity], [str(k) for k in keys])
        return {r[0]: r[1] for rows in self._queries(*queries) for r in rows}

    def _keymap_pending(self, namespace: str, entity: str) -> None:
        """Nothing to move in (a target whose batches write the key map at once)."""


def _listed(value: Any) -> list:
    """A sequence json cannot write (a batch's ``FailureMetas``) as the list it stands for."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
