"""The ledger in ``mp_ledger_*`` tables: batch records, key map, deletes, rollback."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from runs.engine.connectors.base import ColumnInfo, LoadResult, TableInfo
from runs.engine.connectors.base.ledger import SqlLedger, stored_result

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec
from .operations import _from_json, q
from .plumbing import SqlitePlumbing

_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS mp_ledger_batch (
    run_id TEXT NOT NULL, batch_id TEXT NOT NULL, entity TEXT NOT NULL,
    target_table TEXT NOT NULL, target_key_column TEXT NOT NULL,
    committed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now')),
    result_meta TEXT NOT NULL DEFAULT '{}', load_result TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, batch_id));
CREATE TABLE IF NOT EXISTS mp_ledger_row (
    run_id TEXT NOT NULL, batch_id TEXT NOT NULL, entity TEXT NOT NULL,
    target_table TEXT NOT NULL, target_key TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('insert', 'update')),
    before_image TEXT, row_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mp_ledger_row_batch ON mp_ledger_row (run_id, batch_id);
CREATE TABLE IF NOT EXISTS mp_ledger_keymap (
    namespace TEXT NOT NULL, entity TEXT NOT NULL, source_key TEXT NOT NULL,
    target_key TEXT NOT NULL, run_id TEXT NOT NULL, batch_id TEXT NOT NULL,
    PRIMARY KEY (namespace, entity, source_key));
CREATE INDEX IF NOT EXISTS mp_ledger_keymap_batch ON mp_ledger_keymap (run_id, batch_id);
CREATE TABLE IF NOT EXISTS mp_ledger_kept (
    run_id TEXT NOT NULL, batch_id TEXT NOT NULL, entity TEXT NOT NULL,
    target_key TEXT NOT NULL, row_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mp_ledger_kept_batch ON mp_ledger_kept (run_id, batch_id);
"""
# Every table above: the ledger is complete when all exist.
_LEDGER_TABLES = ("mp_ledger_batch", "mp_ledger_row", "mp_ledger_keymap", "mp_ledger_kept")


def _write_ledger(
    conn: sqlite3.Connection, entity: EntitySpec, run_id: str, batch_id: str, written: list[tuple]
) -> None:
    conn.executemany(
        "INSERT INTO mp_ledger_row (run_id, batch_id, entity, target_table, target_key, action, "
        "before_image, row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                batch_id,
                entity.name,
                entity.target_table,
                w[0],
                "insert" if w[1] else "update",
                w[2],
                w[3],
            )
            for w in written
        ],
    )


def write_kept(
    conn: sqlite3.Connection, entity: EntitySpec, run_id: str, batch_id: str, kept: list[tuple]
) -> None:
    """Rows a batch found already holding what it meant (not written): target key and row hash
    of the intended values. They are the run's rows too (its reconciliation scope)."""
    conn.executemany(
        "INSERT INTO mp_ledger_kept (run_id, batch_id, entity, target_key, row_hash) "
        "VALUES (?, ?, ?, ?, ?)",
        [(run_id, batch_id, entity.name, w[0], w[3]) for w in kept],
    )


def _write_keymap(
    conn: sqlite3.Connection,
    namespace: str,
    entity: str,
    run_id: str,
    batch_id: str,
    pairs: list[tuple[str, str]],
) -> None:
    """Key map rows (source key, target key); a mapping that already points at the same
    target key keeps its creator."""
    conn.executemany(
        "INSERT INTO mp_ledger_keymap (namespace, entity, source_key, target_key, run_id, "
        "batch_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, entity, source_key) "
        "DO UPDATE SET target_key = excluded.target_key, run_id = excluded.run_id, "
        "batch_id = excluded.batch_id WHERE target_key IS NOT excluded.target_key",
        [(namespace, entity, s, t, run_id, batch_id) for s, t in pairs],
    )


def _stored_result(conn: sqlite3.Connection, run_id: str, batch_id: str) -> LoadResult | None:
    rec = conn.execute(
        "SELECT load_result, result_meta FROM mp_ledger_batch WHERE run_id = ? AND batch_id = ?",
        (run_id, batch_id),
    ).fetchone()
    return None if rec is None else stored_result(json.loads(rec[0]), json.loads(rec[1]))


def _undo_rows(
    conn: sqlite3.Connection, info: TableInfo, tk: ColumnInfo, run_id: str, batch_id: str
) -> tuple[int, int]:
    deleted = conn.execute(
        f"DELETE FROM {q(info.name)} WHERE {q(tk.name)} IN (SELECT target_key FROM mp_ledger_row "
        "WHERE run_id = ? AND batch_id = ? AND action = 'insert')",
        (run_id, batch_id),
    ).rowcount
    images = conn.execute(
        "SELECT target_key, before_image FROM mp_ledger_row WHERE run_id = ? "
        "AND batch_id = ? AND action = 'update'",
        (run_id, batch_id),
    ).fetchall()
    restore = [c.name for c in info.columns if not c.generated and c.name != tk.name]
    if not images or not restore:
        return deleted, 0
    sets = ", ".join(f"{q(c)} = ?" for c in restore)
    restored = 0
    for key, image in images:
        before = json.loads(image)
        restored += conn.execute(
            f"UPDATE {q(info.name)} SET {sets} WHERE {q(tk.name)} = ?",
            [*(_from_json(before.get(c)) for c in restore), key],
        ).rowcount
    return deleted, restored


class SqliteLedger(SqlLedger, SqlitePlumbing):
    """The ledger in ``mp_ledger_*`` tables: batch records, key map, deletes, rollback."""

    _stored_result = staticmethod(_stored_result)
    _undo_rows = staticmethod(_undo_rows)
    batch_tables = ("keymap", "row", "kept", "batch")

    def _batch_tx(self, run_id: str, batch_id: str) -> AbstractContextManager[sqlite3.Connection]:
        """A batch's write transaction (BEGIN IMMEDIATE: one writer at a time)."""
        return self._tx(write=True)

    def ensure_ledger(self) -> None:
        """Create the mp_ledger_* tables if missing. Idempotent; checked every time (one
        catalog read): the ledger may have been dropped since the connector opened."""
        with self._tx() as conn:
            marks = ", ".join("?" for _ in _LEDGER_TABLES)
            present = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' "  # noqa: S608 - placeholders only
                f"AND name IN ({marks})",
                _LEDGER_TABLES,
            ).fetchone()[0]
        if present == len(_LEDGER_TABLES):
            return
        with self._tx(write=True) as conn:
            for stmt in _LEDGER_DDL.split(";"):
                if stmt.strip():
                    conn.execute(stmt)

    def ledger_order(self, run_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(run id, batch id) of every batch recorded for ``run_ids``, in commit order."""
        self.ensure_ledger()
        marks = ", ".join("?" for _ in run_ids)
        with self._tx() as conn:
            return [
                (r[0], r[1])
                for r in conn.execute(
                    f"SELECT run_id, batch_id FROM mp_ledger_batch WHERE run_id IN ({marks}) "  # noqa: S608 - placeholders only
                    "ORDER BY rowid",
                    tuple(run_ids),
                )
            ]

    def ledger_batches(self, run_id: str) -> list[str]:
        """Batch ids recorded for ``run_id``, in commit order."""
        self.ensure_ledger()
        with self._tx() as conn:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT batch_id FROM mp_ledger_batch WHERE run_id = ? "
                    "ORDER BY committed_at, rowid",
                    (run_id,),
                )
            ]

    def ledger_row_hashes(self, run_id: str, entity: str) -> dict[str, str]:
        """Target key -> hash of the row as the run meant it, for every row the run answers
        for: the rows it last wrote (its ledger) and the rows it found already holding what
        it meant (mp_ledger_kept). Read-only."""
        self.ensure_ledger()
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT target_key, row_hash FROM mp_ledger_kept WHERE run_id = ? "
                "AND entity = ? ORDER BY rowid",
                (run_id, entity),
            ).fetchall()
            rows += conn.execute(
                "SELECT target_key, row_hash FROM mp_ledger_row WHERE run_id = ? "
                "AND entity = ? ORDER BY rowid",
                (run_id, entity),
            ).fetchall()
        return {str(k): h for k, h in rows}
