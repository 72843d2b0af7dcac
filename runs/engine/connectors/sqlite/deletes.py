"""SQLite side of source deletes (``base.deletes.SqlDeletes``): rows deleted or marked one
key at a time, and their undo (table ``mp_ledger_deleted``)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from runs.engine.connectors.base import ColumnInfo, TableInfo
from runs.engine.connectors.base.deletes import SqlDeletes
from runs.engine.deletes import NOW

from .operations import _from_json, _jsonable, q
from .plumbing import SqlitePlumbing

_DDL = (
    "CREATE TABLE IF NOT EXISTS mp_ledger_deleted (run_id TEXT NOT NULL, batch_id TEXT NOT NULL, "
    "entity TEXT NOT NULL, target_table TEXT NOT NULL, target_key TEXT NOT NULL, "
    "action TEXT NOT NULL CHECK (action IN ('delete', 'mark')), before_image TEXT NOT NULL, "
    "namespace TEXT NOT NULL, source_key TEXT NOT NULL, keymap_run_id TEXT, "
    "keymap_batch_id TEXT)"
)


class SqliteDeletes(SqlDeletes, SqlitePlumbing):
    """Deleting and marking rows key by key; undoing them from before-images."""

    def _ensure_deleted(self, db: sqlite3.Connection) -> None:
        db.execute(_DDL)

    def _images(self, db: sqlite3.Connection, info: TableInfo, tk: ColumnInfo, keys: list) -> dict:
        """JSON of the target rows with those keys (the write transaction locks them)."""
        names = list(info.column_names)
        select = (
            f"SELECT {', '.join(q(n) for n in names)} FROM {q(info.name)} WHERE {q(tk.name)} = ?"
        )
        images: dict[str, str] = {}
        for key in keys:
            found = db.execute(select, (key,)).fetchone()
            if found is not None:
                images[key] = json.dumps(
                    {n: _jsonable(v) for n, v in zip(names, found, strict=True)}
                )
        return images

    def _delete_rows(
        self, db: sqlite3.Connection, info: TableInfo, tk: ColumnInfo, keys: list
    ) -> list:
        delete = f"DELETE FROM {q(info.name)} WHERE {q(tk.name)} = ?"
        return [k for k in keys if db.execute(delete, (k,)).rowcount]

    def _mark_rows(
        self,
        db: sqlite3.Connection,
        info: TableInfo,
        tk: ColumnInfo,
        mark: ColumnInfo,
        value: Any,
        keys: list,
    ) -> list:
        if value == NOW:
            new = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
            guard = f"{q(mark.name)} IS NULL"
            args: tuple = (new,)
        else:
            new, guard, args = value, f"{q(mark.name)} IS NOT ?", (value, value)
        sql = f"UPDATE {q(info.name)} SET {q(mark.name)} = ? WHERE {q(tk.name)} = ? AND {guard}"
        done = []
        for key in keys:
            params = (args[0], key, *args[1:])
            if db.execute(sql, params).rowcount:
                done.append(key)
        return done

    def _undo_deletes(
        self, db: sqlite3.Connection, info: TableInfo, tk: ColumnInfo, run_id: str, batch_id: str
    ) -> int:
        """Inside rollback_batch's transaction: re-insert deleted rows (and key-map entries),
        restore marked rows from their before-images. Returns rows restored."""
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mp_ledger_deleted'"
        ).fetchone()
        if not exists:
            return 0
        rows = db.execute(
            "SELECT action, target_key, before_image, namespace, entity, source_key, "
            "keymap_run_id, keymap_batch_id FROM mp_ledger_deleted "
            "WHERE run_id = ? AND batch_id = ? ORDER BY rowid",
            (run_id, batch_id),
        ).fetchall()
        cols = [c.name for c in info.columns if not c.generated or c.name == tk.name]
        restore = [c for c in cols if c != tk.name]
        restored = 0
        for action, key, image, namespace, entity, source_key, km_run, km_batch in rows:
            before: dict[str, Any] = json.loads(image)
            if action == "delete":
                if before:
                    marks = ", ".join("?" for _ in cols)
                    db.execute(
                        f"INSERT INTO {q(info.name)} ({', '.join(q(c) for c in cols)}) "
                        f"VALUES ({marks})",
                        [_from_json(before.get(c)) for c in cols],
                    )
                    restored += 1
                db.execute(
                    "INSERT OR IGNORE INTO mp_ledger_keymap (namespace, entity, source_key, "
                    "target_key, run_id, batch_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (namespace, entity, source_key, key, km_run, km_batch),
                )
            elif restore:
                sets = ", ".join(f"{q(c)} = ?" for c in restore)
                restored += db.execute(
                    f"UPDATE {q(info.name)} SET {sets} WHERE {q(tk.name)} = ?",
                    [*(_from_json(before.get(c)) for c in restore), key],
                ).rowcount
        db.execute(
            "DELETE FROM mp_ledger_deleted WHERE run_id = ? AND batch_id = ?", (run_id, batch_id)
        )
        return restored
