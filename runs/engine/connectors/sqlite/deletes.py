"""SQLite side of source deletes: key-map paging, ledgered delete/mark, and their undo
(table ``mp_ledger_deleted``; same contract as pg_deletes)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runs.engine.connectors.base import ColumnInfo, TableInfo, chunks
from runs.engine.connectors.base.deletes import delete_counts, deleted_rows, stored_delete
from runs.engine.deletes import NOW, DeleteResult, check_policy

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec

    from .base import SqliteConnector

_CHUNK = 400
_DDL = (
    "CREATE TABLE IF NOT EXISTS mp_ledger_deleted (run_id TEXT NOT NULL, batch_id TEXT NOT NULL, "
    "entity TEXT NOT NULL, target_table TEXT NOT NULL, target_key TEXT NOT NULL, "
    "action TEXT NOT NULL CHECK (action IN ('delete', 'mark')), before_image TEXT NOT NULL, "
    "namespace TEXT NOT NULL, source_key TEXT NOT NULL, keymap_run_id TEXT, "
    "keymap_batch_id TEXT)"
)


def keymap_page(
    conn: SqliteConnector, namespace: str, entity: str, *, after: str | None, limit: int
) -> list[str]:
    """Up to ``limit`` ledgered source keys of ``entity`` after ``after``, in key order."""
    conn.ensure_ledger()
    with conn._tx() as db:
        return [
            r[0]
            for r in db.execute(
                "SELECT source_key FROM mp_ledger_keymap WHERE namespace = ? AND entity = ? "
                "AND (? IS NULL OR source_key > ?) ORDER BY source_key LIMIT ?",
                (namespace, entity, after, after, int(limit)),
            )
        ]


def delete_batch(
    conn: SqliteConnector,
    *,
    entity: EntitySpec,
    source_keys: Sequence[str],
    run_id: str,
    batch_id: str,
    namespace: str,
) -> DeleteResult:
    """Apply the entity's delete policy to the target rows of ``source_keys`` + ledger them, in
    ONE transaction. Idempotent per (run_id, batch_id); a batch that changed nothing records
    nothing. Raises EngineError (policy), SchemaError, TransientError."""
    from .ledger import _stored_result
    from .operations import _jsonable, q

    check_policy(entity)
    info = conn._table(entity.target_table)
    tk = info.column(entity.target_key)
    mark = info.column(entity.delete_mark_column) if entity.delete_policy == "mark" else None
    conn.ensure_ledger()
    with conn._tx(write=True) as db:
        db.execute(_DDL)
        stored = _stored_result(db, run_id, batch_id)
        if stored is not None:
            return stored_delete(stored)
        pairs: dict[str, tuple] = {}
        for chunk in chunks([str(k) for k in source_keys], _CHUNK):
            marks = ", ".join("?" for _ in chunk)
            for row in db.execute(
                "SELECT source_key, target_key, run_id, batch_id FROM mp_ledger_keymap WHERE "
                f"namespace = ? AND entity = ? AND source_key IN ({marks})",
                [namespace, entity.name, *chunk],
            ):
                pairs[row[1]] = row
        if not pairs:
            return DeleteResult()
        names = list(info.column_names)
        images: dict[str, str] = {}
        for key in pairs:
            cur = db.execute(
                f"SELECT {', '.join(q(n) for n in names)} FROM {q(info.name)} "
                f"WHERE {q(tk.name)} = ?",
                (key,),
            )
            found = cur.fetchone()
            if found is not None:
                images[key] = json.dumps(
                    {n: _jsonable(v) for n, v in zip(names, found, strict=True)}
                )
        if mark is None:
            done = [
                k
                for k in images
                if db.execute(f"DELETE FROM {q(info.name)} WHERE {q(tk.name)} = ?", (k,)).rowcount
            ]
            for p in pairs.values():
                db.execute(
                    "DELETE FROM mp_ledger_keymap WHERE namespace = ? AND entity = ? "
                    "AND source_key = ?",
                    (namespace, entity.name, p[0]),
                )
        else:
            done = _mark_rows(db, info, tk, mark, entity.delete_mark_value, list(images))
        rows = deleted_rows(
            run_id=run_id,
            batch_id=batch_id,
            entity=entity.name,
            table=info.name,
            namespace=namespace,
            marked=mark is not None,
            done=done,
            images=images,
            pairs=pairs,
        )
        if not rows:
            return DeleteResult()
        db.executemany(
            "INSERT INTO mp_ledger_deleted VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
        counts = delete_counts(done, marked=mark is not None)
        db.execute(
            "INSERT INTO mp_ledger_batch (run_id, batch_id, entity, target_table, "
            "target_key_column, result_meta, load_result) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                batch_id,
                entity.name,
                info.name,
                tk.name,
                json.dumps(counts),
                json.dumps(counts),
            ),
        )
    return DeleteResult(**counts)


def _mark_rows(
    db: sqlite3.Connection,
    info: TableInfo,
    tk: ColumnInfo,
    mark: ColumnInfo,
    value: str | None,
    keys: list[str],
) -> list[str]:
    from .operations import q

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


def undo_deletes(
    db: sqlite3.Connection, info: TableInfo, tk: ColumnInfo, run_id: str, batch_id: str
) -> int:
    """Inside rollback_batch's transaction: re-insert deleted rows (and key-map entries),
    restore marked rows from their before-images. Returns rows restored."""
    from .operations import _from_json, q

    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mp_ledger_deleted'"
    ).fetchone()
    if not exists:
        return 0
    rows = db.execute(
        "SELECT action, target_key, before_image, namespace, entity, source_key, keymap_run_id, "
        "keymap_batch_id FROM mp_ledger_deleted WHERE run_id = ? AND batch_id = ? ORDER BY rowid",
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
