"""The target role: load-stage checks, writing a batch, reading it back."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from runs.engine.canonical import canonical_row
from runs.engine.connectors.base import (
    CoercedFailure,
    Coercion,
    ColumnInfo,
    LoadResult,
    TableInfo,
    chunks,
    load_columns,
    validate_frame,
    with_coerced,
)
from runs.engine.hashing import row_hash

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec
    from runs.engine.transform import FieldError
from .ledger import _stored_result, _write_keymap, _write_ledger, write_kept
from .operations import _CHUNK, _jsonable, _qcols, _text_rows, q
from .plumbing import SqlitePlumbing


def _write_rows(
    conn: sqlite3.Connection,
    info: TableInfo,
    cols: list[ColumnInfo],
    tk: ColumnInfo,
    upsert_on: ColumnInfo | None,
    rows: pd.DataFrame,
    skip_unchanged: bool = False,
) -> tuple[list[tuple], list[Coercion]]:
    """Write the rows, then read every one back and compare it with what was meant.

    Returns (written, coerced). ``written``: (target key, inserted?, before-image JSON, row
    hash of the INTENDED values, written?, row position) per row kept; with skip_unchanged
    an identical existing row is left alone (written False). ``coerced``: (row position,
    [(column, intended, stored)]) of rows the target stored otherwise (an affinity turning
    text into a REAL, a trigger); they are undone (rolled back to a savepoint, the others
    written again) and are not in ``written``. Values compare by runs.engine.canonical."""
    values = _text_rows(rows)
    intended = [canonical_row(cols, v) for v in values]
    alive = list(range(len(values)))
    coerced: list[Coercion] = []
    while True:
        conn.execute("SAVEPOINT mp_rows")
        written = _insert_rows(
            conn, info, cols, tk, upsert_on, [values[i] for i in alive], skip_unchanged
        )
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


class SqliteTarget(SqlitePlumbing):
    """The target role: load-stage checks, writing a batch, reading it back."""

    def validate_rows(self, table: str, frame: pd.DataFrame) -> dict[Hashable, list[FieldError]]:
        """Rows the table would refuse -> their load-stage FieldErrors (one per refused column)
        by index; read-only; SchemaError if the table or a column is unknown."""
        return validate_frame(self._table(table), frame)

    def load_batch(
        self,
        *,
        entity: EntitySpec,
        rows: pd.DataFrame,
        source_keys: Sequence[str],
        run_id: str,
        batch_id: str,
        namespace: str,
        result_meta: dict[str, Any],
        skip_unchanged: bool = False,
        describe_coerced: CoercedFailure | None = None,
    ) -> LoadResult:
        """Write one batch + ledger + key map + batch record in ONE transaction. Idempotent.

        Every row is read back before the commit (see ``_write_rows``): a row the target
        stored otherwise than meant becomes a ``coerced_by_target`` failure, never a loaded
        row; the ledger's row hash is that of the intended values.

        ``skip_unchanged`` (upsert only; delta by comparison): rows whose target row already
        holds the same values are not written and not in the ledger, only counted."""
        info = self._table(entity.target_table)
        cols, tk, ext = load_columns(info, entity, rows, source_keys)
        self.ensure_ledger()
        with self._tx(write=True) as conn:
            stored = _stored_result(conn, run_id, batch_id)
            if stored is not None:
                return stored
            upsert_on = ext if entity.load_mode == "upsert" else None
            written, coerced = _write_rows(
                conn, info, cols, tk, upsert_on, rows, skip_unchanged and upsert_on is not None
            )
            result_meta = with_coerced(result_meta, coerced, rows, source_keys, describe_coerced)
            inserted = sum(1 for w in written if w[1])
            changed = [w for w in written if w[4]]
            result = LoadResult(
                inserted=inserted,
                updated=len(changed) - inserted,
                unchanged=len(written) - len(changed),
                result_meta=result_meta,
                coerced=len(coerced),
            )
            _write_ledger(conn, entity, run_id, batch_id, changed)
            write_kept(conn, entity, run_id, batch_id, [w for w in written if not w[4]])
            _write_keymap(
                conn,
                namespace,
                entity.name,
                run_id,
                batch_id,
                [str(source_keys[w[5]]) for w in written],
                [w[0] for w in written],
            )
            conn.execute(
                "INSERT INTO mp_ledger_batch (run_id, batch_id, entity, target_table, "
                "target_key_column, result_meta, load_result) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    batch_id,
                    entity.name,
                    info.name,
                    tk.name,
                    json.dumps(result_meta),
                    json.dumps(
                        {
                            "inserted": result.inserted,
                            "updated": result.updated,
                            "unchanged": result.unchanged,
                        }
                    ),
                ),
            )
        return result
