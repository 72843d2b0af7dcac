"""The target role: load-stage checks, writing a batch, reading it back."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from runs.engine.canonical import canonical_row
from runs.engine.connectors.base import Coercion, ColumnInfo, TableInfo, chunks
from runs.engine.connectors.base.ledger import insert_row
from runs.engine.connectors.base.target import Load, SqlTarget, Written
from runs.engine.hashing import row_hash

from .ledger import _write_keymap, _write_ledger, write_kept
from .operations import _CHUNK, OPS, _jsonable, _qcols, _text_rows, q
from .plumbing import SqlitePlumbing

if TYPE_CHECKING:  # pandas is loaded where a frame is made, not by importing this
    import pandas as pd


def _write_rows(conn: sqlite3.Connection, load: Load, rows: pd.DataFrame, skip: bool) -> tuple:
    """Write the rows, then read every one back and compare it with what was meant by
    runs.engine.canonical. Returns (written, coerced) as ``Written.rows`` and ``Coercion``
    lists; with ``skip`` an identical existing row is left alone (written False). Coerced
    rows (an affinity turning text into a REAL, a trigger) are undone: rolled back to a
    savepoint, the others written again."""
    info, cols, tk, upsert_on = load
    values = _text_rows(rows)
    intended = [canonical_row(cols, v) for v in values]
    alive = list(range(len(values)))
    coerced: list[Coercion] = []
    while True:
        conn.execute("SAVEPOINT mp_rows")
        written = _insert_rows(conn, info, cols, tk, upsert_on, [values[i] for i in alive], skip)
        stored = _read_back(conn, info, cols, tk, [w[0] for w in written])
        bad: list[Coercion] = []
        for pos, w in zip(alive, written, strict=True):
            have = stored.get(w[0])
            if have is None:
                bad.append((pos, [("*", "row", None)]))
                continue
            have = canonical_row(cols, have)
            if have != intended[pos]:
                diffs = [
                    (c.name, a, b)
                    for c, a, b in zip(cols, intended[pos], have, strict=True)
                    if a != b
                ]
                bad.append((pos, diffs))
        if not bad:
            conn.execute("RELEASE mp_rows")
            break
        coerced += bad
        conn.execute("ROLLBACK TO mp_rows")
        conn.execute("RELEASE mp_rows")
        gone = {b[0] for b in bad}
        alive = [p for p in alive if p not in gone]
    return [
        (w[0], w[1], w[2], row_hash(intended[pos]), w[4], pos)
        for pos, w in zip(alive, written, strict=True)
    ], sorted(coerced)


def _read_back(
    conn: sqlite3.Connection,
    info: TableInfo,
    cols: list[ColumnInfo],
    tk: ColumnInfo,
    keys: list[str],
) -> dict[str, list[str | None]]:
    """Target key -> the row's values as text, for the keys given (rows now in the table)."""
    select = ", ".join(f"CAST({q(c)} AS TEXT)" for c in [tk.name, *(c.name for c in cols)])
    out: dict[str, list[str | None]] = {}
    for chunk in chunks(keys, _CHUNK):
        marks = ", ".join("?" for _ in chunk)
        for r in conn.execute(
            f"SELECT {select} FROM {q(info.name)} WHERE {q(tk.name)} IN ({marks})", list(chunk)
        ):
            out[str(r[0])] = list(r[1:])
    return out


def _insert_rows(
    conn: sqlite3.Connection,
    info: TableInfo,
    cols: list[ColumnInfo],
    tk: ColumnInfo,
    upsert_on: ColumnInfo | None,
    rows: list[list[str | None]],
    skip_unchanged: bool,
) -> list[tuple]:
    """Insert/upsert row by row with RETURNING (exact key mapping; SQLite's set RETURNING
    order is unspecified). (target key, inserted?, before-image JSON, None, written?) each."""
    names = [c.name for c in cols]
    conflict = ""
    if upsert_on is not None:
        sets = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in names)
        conflict = f" ON CONFLICT ({q(upsert_on.name)}) DO UPDATE SET {sets}"
        if skip_unchanged:
            conflict += " WHERE " + " OR ".join(f"{q(n)} IS NOT excluded.{q(n)}" for n in names)
    insert = (
        f"INSERT INTO {q(info.name)} ({_qcols(names)}) VALUES "
        f"({', '.join('?' for _ in names)}){conflict} RETURNING CAST({q(tk.name)} AS TEXT)"
    )
    all_cols = [c.name for c in info.columns]
    before_sql = (
        f"SELECT {_qcols(all_cols)} FROM {q(info.name)} WHERE {q(upsert_on.name)} = ?"
        if upsert_on is not None
        else ""
    )
    ext_pos = names.index(upsert_on.name) if upsert_on is not None else -1
    written = []
    for values in rows:
        before = None
        if upsert_on is not None:
            old = conn.execute(before_sql, (values[ext_pos],)).fetchone()
            if old is not None:
                before = json.dumps({c: _jsonable(v) for c, v in zip(all_cols, old, strict=True)})
        out = conn.execute(insert, values).fetchone()
        if out is None:  # ON CONFLICT ... WHERE was false: the row is already identical
            written.append((str(old[all_cols.index(tk.name)]), False, None, None, False))
            continue
        written.append((out[0], before is None, before, None, True))
    return written


class SqliteTarget(SqlTarget, SqlitePlumbing):
    """The target role: rows written one by one with RETURNING, then read back."""

    _write_rows = staticmethod(_write_rows)

    def _record_batch(self, conn: sqlite3.Connection, batch: Written) -> None:
        """Ledger rows of the rows written, kept rows of those found unchanged, key-map rows of
        every row, the batch record."""
        _write_ledger(
            conn, batch.entity, batch.run_id, batch.batch_id, [w for w in batch.rows if w[4]]
        )
        kept = [w for w in batch.rows if not w[4]]  # found holding what was meant: the run's too
        write_kept(conn, batch.entity, batch.run_id, batch.batch_id, kept)
        keymap = [(s, w[0]) for s, w in zip(batch.row_source_keys, batch.rows, strict=True)]
        _write_keymap(
            conn, batch.namespace, batch.entity.name, batch.run_id, batch.batch_id, keymap
        )
        conn.execute(*insert_row(OPS, "batch", batch.record(batch.result.result_meta)))
