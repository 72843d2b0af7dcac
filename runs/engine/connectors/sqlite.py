"""SQLite connector (source and target) on the stdlib ``sqlite3``; ledger tables ``mp_ledger_*``.

Table and column names are checked against ``introspect()`` and double-quoted with ``"``
doubled; values always travel as bound parameters.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

from runs.engine.canonical import canonical_row
from runs.engine.connectors import sqlite_deletes
from runs.engine.connectors.base import (
    ChangedSince,
    CoercedFailure,
    Coercion,
    ColumnInfo,
    KeyRange,
    LoadResult,
    RollbackResult,
    SchemaCache,
    SchemaInfo,
    TableChecksum,
    TableInfo,
    chunks,
    compare_detail,
    load_columns,
    max_length_of,
    ranges_from_bounds,
    text_frame,
    validate_frame,
    with_coerced,
)
from runs.engine.deletes import DeleteResult
from runs.engine.errors import SchemaError, TransientError
from runs.engine.hashing import fold_digest, row_hash, text_digest64

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec
    from runs.engine.transform import FieldError

BUSY_TIMEOUT_MS = 30_000
_CHUNK = 400
_BLOB = "__mp_blob_hex__"

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
"""


def q(name: str) -> str:
    """SQLite identifier quoting: wrap in backticks and double embedded ones.

    Not ``"``: SQLite reads a double-quoted name that is no column as a string literal, so a
    renamed column would load its own name as every value. A backtick-quoted unknown name is
    an error ("no such column").
    """
    return "`" + name.replace("`", "``") + "`"


def _qcols(names: Sequence[str]) -> str:
    return ", ".join(q(n) for n in names)


def _jsonable(value: Any) -> Any:
    return {_BLOB: value.hex()} if isinstance(value, bytes) else value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and _BLOB in value:
        return bytes.fromhex(value[_BLOB])
    return value


class SqliteConnector(SchemaCache):
    """Source and target on one SQLite file; autocommit connection, explicit transactions."""

    kind = "sqlite"

    def __init__(self, params: dict[str, Any]) -> None:
        self._path = str(params["path"])
        self._busy_ms = int(params.get("busy_timeout_ms") or BUSY_TIMEOUT_MS)
        self._conn: sqlite3.Connection | None = None
        self._schema: SchemaInfo | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,
                timeout=self._busy_ms / 1000,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms:d}")
            self._conn = conn
        return self._conn

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction (BEGIN IMMEDIATE when writing); busy/locked -> TransientError."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise TransientError(str(exc)) from exc
            raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    # ------------------------------------------------------------------ schema
    def introspect(self) -> SchemaInfo:
        """Tables and views (except sqlite_* and mp_ledger_*) with columns, keys, row counts."""
        with self._tx() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                    "AND name NOT LIKE 'mp\\_ledger\\_%' ESCAPE '\\' ORDER BY name"
                )
            ]
            tables = {name: _table_info(conn, name) for name in names}
        self._schema = SchemaInfo(tables=tables)
        return self._schema

    def live_table(self, name: str) -> TableInfo | None:
        """The table as it is now (PRAGMA table_xinfo, no row count; the cache is refreshed);
        None when it does not exist. Read-only."""
        with self._tx() as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)
            ).fetchone()
            info = _table_info(conn, name, count=False) if exists else None
        if self._schema is not None:
            tables = {k: v for k, v in self._schema.tables.items() if k != name}
            self._schema = SchemaInfo(tables=tables | ({name: info} if info else {}))
        return info

    # ------------------------------------------------------------------ source side
    def count(self, table: str, *, changed_since: ChangedSince | None = None) -> int:
        """Exact row count of ``table`` (rows past the watermark when given); SchemaError."""
        info = self._table(table)
        where, params = self._where(info, (), None, changed_since)
        with self._tx() as conn:
            return int(
                conn.execute(f"SELECT count(*) FROM {q(info.name)} {where}", params).fetchone()[0]
            )

    def max_value(self, table: str, column: str) -> str | None:
        """Highest value of ``column`` as text (a delta run's high-water mark); SchemaError."""
        info = self._table(table)
        col = info.column(column)
        with self._tx() as conn:
            value = conn.execute(
                f"SELECT CAST(max({q(col.name)}) AS TEXT) FROM {q(info.name)}"
            ).fetchone()[0]
        return value

    def _where(
        self,
        info: TableInfo,
        key_cols: Sequence[str],
        key_range: KeyRange | None,
        changed_since: ChangedSince | None,
    ) -> tuple[str, list[Any]]:
        keys = info.require(key_cols)
        parts, params = [], []
        for bound, op in key_range.comparisons(key_cols) if key_range else ():
            parts.append(f"({_qcols(key_cols)}) {op} ({', '.join('?' for _ in keys)})")
            params.extend(bound)
        if changed_since is not None:
            info.column(changed_since[0])
            parts.append(f"{q(changed_since[0])} > ?")
            params.append(changed_since[1])
        return ("WHERE " + " AND ".join(parts)) if parts else "", params

    def key_ranges(
        self,
        table: str,
        key_cols: Sequence[str],
        batch_size: int,
        *,
        changed_since: ChangedSince | None = None,
    ) -> list[KeyRange]:
        """Keyset batches covering every row once (window query, no OFFSET); last upper open."""
        info = self._table(table)
        where, params = self._where(info, key_cols, None, changed_since)
        keys = _qcols(key_cols)
        with self._tx() as conn:
            bounds = [
                tuple(r)
                for r in conn.execute(
                    f"SELECT {keys} FROM (SELECT {keys}, row_number() OVER (ORDER BY {keys}) "
                    f"AS mp_rn FROM {q(info.name)} {where}) WHERE mp_rn % ? = 0 ORDER BY mp_rn",
                    [*params, max(1, int(batch_size))],
                )
            ]
            any_rows = conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM {q(info.name)} {where})", params
            ).fetchone()[0]
        return ranges_from_bounds(bounds, bool(any_rows))

    def extract(
        self,
        table: str,
        columns: Sequence[str],
        key_cols: Sequence[str],
        key_range: KeyRange,
        *,
        changed_since: ChangedSince | None = None,
    ) -> pd.DataFrame:
        """Rows of one key range, ordered by key, as object columns of str/None. The columns
        are checked against the live table (PRAGMA), never the cached schema: SchemaError."""
        info = self.live_table(table)
        if info is None:
            raise SchemaError(f"table {table!r} does not exist")
        info.require(columns)
        where, params = self._where(info, key_cols, key_range, changed_since)
        select = ", ".join(f"CAST({q(c)} AS TEXT)" for c in columns)
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {select} FROM {q(info.name)} {where} ORDER BY {_qcols(key_cols)}", params
            ).fetchall()
        data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
        return text_frame(columns, data)

    def fetch_keys(self, table: str, key_cols: Sequence[str], keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` (source key text, ``|``-joined when composite) exist in ``table``."""
        info = self._table(table)
        info.require(key_cols)
        width = len(key_cols)
        parts = [p for p in (str(k).split("|", width - 1) for k in keys) if len(p) == width]
        text = " || '|' || ".join(f"CAST({q(c)} AS TEXT)" for c in key_cols)
        found: set[str] = set()
        row = "(" + ", ".join("?" for _ in key_cols) + ")"
        with self._tx() as conn:
            for chunk in chunks(parts, _CHUNK // width):
                values = ", ".join(row for _ in chunk)
                args = [v for p in chunk for v in p]
                found.update(
                    r[0]
                    for r in conn.execute(
                        f"SELECT {text} FROM {q(info.name)} WHERE ({_qcols(key_cols)}) IN "
                        f"(VALUES {values})",
                        args,
                    )
                )
        return found

    def duplicate_values(self, table: str, column: str, limit: int = 20) -> tuple[int, list[str]]:
        """(how many distinct non-null values of ``column`` repeat, the first ``limit`` of
        them as text, sorted), counted by the database. Read-only; SchemaError."""
        info = self._table(table)
        name = info.column(column).name
        if (name,) in info.unique:
            return 0, []  # a unique index already guarantees it
        col = q(name)
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT count(*) OVER (), v FROM (SELECT CAST({col} AS TEXT) AS v "
                f"FROM {q(info.name)} WHERE {col} IS NOT NULL GROUP BY 1 HAVING count(*) > 1) "
                "ORDER BY v LIMIT ?",
                (int(limit),),
            ).fetchall()
        return (int(rows[0][0]) if rows else 0), [r[1] for r in rows]

    # ------------------------------------------------------------------ ledger
    def ensure_ledger(self) -> None:
        """Create the mp_ledger_* tables if missing. Idempotent; checked every time (one
        catalog read): the ledger may have been dropped since the connector opened."""
        with self._tx() as conn:
            present = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                "('mp_ledger_batch', 'mp_ledger_row', 'mp_ledger_keymap')"
            ).fetchone()[0]
        if present == 3:
            return
        with self._tx(write=True) as conn:
            for stmt in _LEDGER_DDL.split(";"):
                if stmt.strip():
                    conn.execute(stmt)

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

    def batch_result(self, run_id: str, batch_id: str) -> LoadResult | None:
        """The stored LoadResult (already_done=True) of a committed batch, else None. Read-only."""
        self.ensure_ledger()
        with self._tx() as conn:
            return _stored_result(conn, run_id, batch_id)

    def keymap_page(
        self, namespace: str, entity: str, *, after: str | None, limit: int
    ) -> list[str]:
        """Up to ``limit`` ledgered source keys of ``entity`` after ``after``, in key order."""
        return sqlite_deletes.keymap_page(self, namespace, entity, after=after, limit=limit)

    def delete_batch(self, **kwargs: Any) -> DeleteResult:
        """Apply the entity's delete policy to some source keys, ledgered (sqlite_deletes)."""
        return sqlite_deletes.delete_batch(self, **kwargs)

    def keymap_lookup(
        self, namespace: str, entity: str, source_keys: Sequence[str]
    ) -> dict[str, str]:
        """Target keys recorded for ``source_keys`` of ``entity`` (missing keys are absent)."""
        self.ensure_ledger()
        found: dict[str, str] = {}
        keys = [str(k) for k in source_keys]
        with self._tx() as conn:
            for chunk in chunks(keys, _CHUNK):
                marks = ", ".join("?" for _ in chunk)
                found.update(
                    conn.execute(
                        "SELECT source_key, target_key FROM mp_ledger_keymap WHERE namespace = ? "
                        f"AND entity = ? AND source_key IN ({marks})",
                        [namespace, entity, *chunk],
                    )
                )
        return found

    # ------------------------------------------------------------------ target side
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

    def _introspect_ledger_tables(self, run_id: str) -> None:
        with self._tx() as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT target_table FROM mp_ledger_batch WHERE run_id = ?", (run_id,)
                )
            ]
        for table in tables:
            self._table(table)

    def rollback_batch(self, run_id: str, batch_id: str) -> RollbackResult:
        """Undo one batch in ONE transaction from its ledger. Idempotent (then all zeros)."""
        self.ensure_ledger()
        self._introspect_ledger_tables(run_id)  # never introspect inside the undo transaction
        with self._tx(write=True) as conn:
            rec = conn.execute(
                "SELECT target_table, target_key_column FROM mp_ledger_batch "
                "WHERE run_id = ? AND batch_id = ?",
                (run_id, batch_id),
            ).fetchone()
            if rec is None:
                return RollbackResult(batch_id=batch_id)
            info = self._table(rec[0])
            deleted, restored = _undo_rows(conn, info, info.column(rec[1]), run_id, batch_id)
            restored += sqlite_deletes.undo_deletes(
                conn, info, info.column(rec[1]), run_id, batch_id
            )
            counts = [
                conn.execute(
                    f"DELETE FROM {t} WHERE run_id = ? AND batch_id = ?", (run_id, batch_id)
                ).rowcount
                for t in ("mp_ledger_keymap", "mp_ledger_row", "mp_ledger_batch")
            ]
        return RollbackResult(
            batch_id=batch_id,
            deleted=deleted,
            restored=restored,
            keymap_deleted=counts[0],
            ledger_rows_deleted=counts[1],
            found=True,
        )

    # ------------------------------------------------------------------ proof
    def table_checksum(self, table: str, key_cols: Sequence[str]) -> TableChecksum:
        """Row count + sum of a 64-bit md5 slice of every row's quote()d values."""
        info = self._table(table)
        info.require(key_cols)
        text = " || char(31) || ".join(f"quote({q(c)})" for c in info.column_names)
        total = rows = 0
        with self._tx() as conn:
            for (row_text,) in conn.execute(f"SELECT {text} FROM {q(info.name)}"):
                total += text_digest64(row_text)
                rows += 1
        return TableChecksum(rows=rows, digest=fold_digest(total))

    def keymap_sources(
        self, namespace: str, entity: str, target_keys: Sequence[str]
    ) -> dict[str, str]:
        """Target key -> the source key (business key) the key map records for it. Read-only."""
        self.ensure_ledger()
        found: dict[str, str] = {}
        with self._tx() as conn:
            for chunk in chunks([str(k) for k in target_keys], _CHUNK):
                marks = ", ".join("?" for _ in chunk)
                found.update(
                    conn.execute(
                        "SELECT target_key, source_key FROM mp_ledger_keymap WHERE namespace = ? "
                        f"AND entity = ? AND target_key IN ({marks})",
                        [namespace, entity, *chunk],
                    )
                )
        return found

    def intended_vs_stored(
        self, table: str, key_col: str, intended: dict[str, list[str | None]], columns: list[str]
    ) -> list[dict[str, Any]]:
        """For each target key -> intended values of ``columns``: the columns whose stored
        value differs, canonically (key, column, intended, stored; a missing row is one entry
        with column "*"). Read-only."""
        info = self._table(table)
        tk = info.column(key_col)
        cols = info.require(columns)
        with self._tx() as conn:
            stored = _read_back(conn, info, cols, tk, list(intended))
        rows = []
        for key, values in intended.items():
            have = stored.get(str(key))
            want = canonical_row(cols, values)
            got = canonical_row(cols, have) if have is not None else [None] * len(cols)
            rows.append(
                (key, have is not None, *(v for p in zip(want, got, strict=True) for v in p))
            )
        return compare_detail(rows, columns)

    def ledger_row_hashes(self, run_id: str, entity: str) -> dict[str, str]:
        """Target key -> hash of the row as the run last wrote it (its ledger); read-only."""
        self.ensure_ledger()
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT target_key, row_hash FROM mp_ledger_row WHERE run_id = ? "
                "AND entity = ? ORDER BY rowid",
                (run_id, entity),
            ).fetchall()
        return {str(k): h for k, h in rows}

    def row_hashes(
        self, table: str, key_col: str, keys: Sequence[str], *, columns: Sequence[str] | None = None
    ) -> dict[str, str]:
        """Row hash (hashing.row_hash over the canonical text of ``columns``, default all:
        what the ledger holds for a row written as meant) per key text found. Read-only."""
        info = self._table(table)
        info.column(key_col)
        names = list(columns) if columns is not None else list(info.column_names)
        cols = info.require(names)
        select = ", ".join(f"CAST({q(c)} AS TEXT)" for c in [key_col, *names])
        out: dict[str, str] = {}
        with self._tx() as conn:
            for chunk in chunks([str(k) for k in keys], _CHUNK):
                marks = ", ".join("?" for _ in chunk)
                for r in conn.execute(
                    f"SELECT {select} FROM {q(info.name)} WHERE {q(key_col)} IN ({marks})",
                    list(chunk),
                ):
                    out[r[0]] = row_hash(canonical_row(cols, r[1:]))
        return out


def _table_info(conn: sqlite3.Connection, name: str, *, count: bool = True) -> TableInfo:
    cols = conn.execute(
        'SELECT name, type, "notnull", dflt_value, pk, hidden '
        "FROM pragma_table_xinfo(?) ORDER BY cid",
        (name,),
    ).fetchall()
    pk = tuple(c[0] for c in sorted((c for c in cols if c[4]), key=lambda c: c[4]))
    rowid_alias = len(pk) == 1 and any(c[0] == pk[0] and c[1].upper() == "INTEGER" for c in cols)
    columns = tuple(
        ColumnInfo(
            name=c[0],
            data_type=c[1] or "",
            cast_type=c[1] or "",
            base_type=(c[1] or "").split("(")[0].strip(),
            max_length=max_length_of(c[1] or ""),
            nullable=not c[2] and not (rowid_alias and c[0] == pk[0]),
            primary_key=c[0] in pk,
            has_default=c[3] is not None or (rowid_alias and c[0] == pk[0]),
            generated=c[5] in (2, 3),
        )
        for c in cols
        if c[5] != 1
    )
    unique = [pk] if pk else []
    for idx_name, partial in conn.execute(
        'SELECT name, partial FROM pragma_index_list(?) WHERE "unique"', (name,)
    ).fetchall():
        idx_cols = tuple(
            r[0]
            for r in conn.execute(
                "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (idx_name,)
            )
        )
        if not partial and None not in idx_cols and idx_cols not in unique:
            unique.append(idx_cols)
    rows = conn.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0] if count else 0
    return TableInfo(
        name=name, columns=columns, row_estimate=int(rows), primary_key=pk, unique=tuple(unique)
    )


def _text_rows(rows: pd.DataFrame) -> list[list[str | None]]:
    values = rows.to_numpy(dtype=object, na_value=None)  # TEXT columns hold NA for missing
    return [
        [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in r]
        for r in values
    ]


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


def _write_keymap(
    conn: sqlite3.Connection,
    namespace: str,
    entity: str,
    run_id: str,
    batch_id: str,
    source_keys: list[str],
    target_keys: list[str],
) -> None:
    """Key map rows; a mapping that already points at the same target key keeps its creator."""
    conn.executemany(
        "INSERT INTO mp_ledger_keymap (namespace, entity, source_key, target_key, run_id, "
        "batch_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, entity, source_key) "
        "DO UPDATE SET target_key = excluded.target_key, run_id = excluded.run_id, "
        "batch_id = excluded.batch_id WHERE target_key IS NOT excluded.target_key",
        [
            (namespace, entity, s, t, run_id, batch_id)
            for s, t in zip(source_keys, target_keys, strict=True)
        ],
    )


def _stored_result(conn: sqlite3.Connection, run_id: str, batch_id: str) -> LoadResult | None:
    rec = conn.execute(
        "SELECT load_result, result_meta FROM mp_ledger_batch WHERE run_id = ? AND batch_id = ?",
        (run_id, batch_id),
    ).fetchone()
    if rec is None:
        return None
    load, meta = json.loads(rec[0]), json.loads(rec[1])
    return LoadResult(
        inserted=int(load.get("inserted", 0)),
        updated=int(load.get("updated", 0)),
        unchanged=int(load.get("unchanged", 0)),
        already_done=True,
        result_meta=meta,
    )


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
