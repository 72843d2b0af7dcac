"""PostgreSQL connector (source and target) on psycopg2: COPY in and out, ledger in ``mp_ledger``.

Type names used in casts (``CAST(x AS type)``) come from ``format_type(atttypid, atttypmod)`` in
the catalog — the full declared type with its typmod (``character(3)``, ``numeric(10,2)``) —
never from plan text; table and column names are checked against ``introspect()`` and quoted.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from runs.engine.canonical import (
    pg_canonical_sql,
    pg_hash_sql,
    pg_intent_sql,
    pg_intent_typed_sql,
    pg_same_sql,
)
from runs.engine.connectors import pg_deletes
from runs.engine.connectors.base import (
    ArrowTextSource,
    ChangedSince,
    CoercedFailure,
    ColumnInfo,
    KeyRange,
    LoadResult,
    RollbackResult,
    SchemaInfo,
    TableChecksum,
    TableInfo,
    arrow_frame,
    arrow_text,
    compare_detail,
    load_columns,
    ranges_from_bounds,
    text_frame,
    validate_frame,
    with_coerced,
)
from runs.engine.deletes import DeleteResult
from runs.engine.errors import EngineError, TransientError
from runs.engine.hashing import fold_digest, row_hash

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec
    from runs.engine.transform import FieldError

_TRANSIENT = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
)
_SKIP_SCHEMAS = ("pg_catalog", "information_schema", "mp_ledger", "pg_toast")

_COLUMNS_SQL = """
SELECT n.nspname, c.relname, greatest(c.reltuples, 0)::bigint, a.attname,
       format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL),
       CASE WHEN a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype) AND a.atttypmod > 4
            THEN a.atttypmod - 4 END,
       NOT a.attnotnull, a.atthasdef OR a.attidentity <> '',
       a.attgenerated <> '' OR a.attidentity = 'a'
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_temp%%'
ORDER BY n.nspname, c.relname, a.attnum
"""
_KEYS_SQL = """
SELECT n.nspname, c.relname, i.indisprimary,
       array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE i.indisunique AND i.indpred IS NULL AND NOT (0 = ANY(i.indkey::int2[]))
  AND n.nspname <> ALL(%s)
GROUP BY n.nspname, c.relname, i.indexrelid, i.indisprimary
"""
_LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS mp_ledger;
CREATE TABLE IF NOT EXISTS mp_ledger.batch (
    run_id text NOT NULL, batch_id text NOT NULL, entity text NOT NULL,
    target_table text NOT NULL, target_key_column text NOT NULL,
    seq bigserial, committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    result_meta jsonb NOT NULL DEFAULT '{}', load_result jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, batch_id));
CREATE TABLE IF NOT EXISTS mp_ledger.row (
    run_id text NOT NULL, batch_id text NOT NULL, entity text NOT NULL,
    target_table text NOT NULL, target_key text NOT NULL,
    action text NOT NULL CHECK (action IN ('insert', 'update')),
    before_image jsonb, row_hash text NOT NULL);
CREATE INDEX IF NOT EXISTS row_batch_idx ON mp_ledger.row (run_id, batch_id);
CREATE TABLE IF NOT EXISTS mp_ledger.keymap (
    namespace text NOT NULL, entity text NOT NULL, source_key text NOT NULL,
    target_key text NOT NULL, run_id text NOT NULL, batch_id text NOT NULL,
    PRIMARY KEY (namespace, entity, source_key));
CREATE INDEX IF NOT EXISTS keymap_batch_idx ON mp_ledger.keymap (run_id, batch_id);
ALTER TABLE mp_ledger.batch ADD COLUMN IF NOT EXISTS failures bytea,
    ADD COLUMN IF NOT EXISTS namespace text,
    ADD COLUMN IF NOT EXISTS keymap_source text[], ADD COLUMN IF NOT EXISTS keymap_target text[];
CREATE INDEX IF NOT EXISTS batch_keymap_pending_idx ON mp_ledger.batch (namespace, entity)
    WHERE keymap_source IS NOT NULL;
ALTER TABLE mp_ledger.batch ADD COLUMN IF NOT EXISTS inserted_keys text[],
    ADD COLUMN IF NOT EXISTS inserted_hashes text[];
-- A batch record holds four 16,700-element text arrays: lz4 compresses them in ~1/3 of
-- pglz's time for the same size (53 -> 38 ms per record); failures are zstd-packed already.
-- Skipped on servers built without lz4 (optional, only speed depends on it).
DO $mp$ BEGIN
    EXECUTE 'ALTER TABLE mp_ledger.batch ALTER COLUMN keymap_source SET COMPRESSION lz4, '
        'ALTER COLUMN keymap_target SET COMPRESSION lz4, '
        'ALTER COLUMN inserted_keys SET COMPRESSION lz4, '
        'ALTER COLUMN inserted_hashes SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL;
END $mp$;
ALTER TABLE mp_ledger.batch ALTER COLUMN failures SET STORAGE EXTERNAL;
CREATE OR REPLACE VIEW mp_ledger.written AS
    SELECT r.run_id, r.batch_id, r.entity, r.target_table, r.target_key, r.action,
        r.before_image, r.row_hash, b.seq
    FROM mp_ledger.row r JOIN mp_ledger.batch b USING (run_id, batch_id)
    UNION ALL
    SELECT b.run_id, b.batch_id, b.entity, b.target_table, u.k, 'insert', NULL::jsonb, u.h, b.seq
    FROM mp_ledger.batch b CROSS JOIN LATERAL unnest(b.inserted_keys, b.inserted_hashes) AS u(k, h)
    WHERE b.inserted_keys IS NOT NULL;
"""
# The last thing _LEDGER_DDL creates (the view's last column): when it exists, the ledger is
# complete.
_LEDGER_READY = (
    "SELECT EXISTS (SELECT 1 FROM pg_attribute "
    "WHERE attrelid = to_regclass('mp_ledger.written') AND attname = 'seq')"
)
_KEYMAP_UPSERT = (
    "INSERT INTO mp_ledger.keymap AS k (namespace, entity, source_key, target_key, run_id, "
    "batch_id) SELECT %s, %s, m.s, m.t, %s, %s FROM ({source}) AS m(s, t) "
    "ON CONFLICT (namespace, entity, source_key) DO UPDATE SET target_key = "
    "EXCLUDED.target_key, run_id = EXCLUDED.run_id, batch_id = EXCLUDED.batch_id "
    "WHERE k.target_key IS DISTINCT FROM EXCLUDED.target_key"
)
_LEDGER_ROW_COPY = (
    "COPY mp_ledger.row (run_id, batch_id, entity, target_table, target_key, "
    "action, before_image, row_hash) FROM STDIN WITH (FORMAT csv)"
)


def _cols(names: Sequence[str], prefix: str | None = None) -> sql.Composable:
    if prefix:
        return sql.SQL(", ").join(sql.Identifier(prefix, n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


# Types without an equality operator (ROW(...) IS DISTINCT FROM ROW(...) fails on them).
_NO_EQUALITY = frozenset(
    {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}
)


def _comparable(alias: sql.Composable, col: ColumnInfo) -> sql.Composable:
    """``alias.col`` as a value a row comparison can use: its text where the type has no
    equality (found by the oracle test: a second upsert into a json column failed)."""
    expr = sql.SQL("{}.{}").format(alias, sql.Identifier(col.name))
    if col.family_type.lower() in _NO_EQUALITY:
        return sql.SQL("{}::text").format(expr)
    return expr


def _cast(expr: sql.Composable, col: ColumnInfo) -> sql.Composable:
    return sql.SQL("CAST({} AS {})").format(expr, sql.SQL(col.cast_type))


def text_array(values: Iterable[Any]) -> str:
    """A PostgreSQL text[] literal of ``values`` (str() of each, every element quoted), to be
    passed as one parameter with ``%s::text[]``. psycopg2 adapts a list to ARRAY['a', ...],
    which the server parses as one constant per element: 46 ms against 9 ms for 2 x 16,700
    keys. Pure."""
    quoted = (str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def _text_array(series: pd.Series) -> pa.Array:
    arr = arrow_text(series)  # the engine's TEXT: the column's own buffers
    if arr is not None:
        return arr
    values = series.to_numpy(dtype=object)
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([None if pd.isna(v) else str(v) for v in values], type=pa.string())


def frame_arrays(frame: pd.DataFrame) -> list[pa.Array]:
    """Each column of ``frame`` as an Arrow string array (the values COPY sends). Pure."""
    return [_text_array(frame.iloc[:, i]) for i in range(frame.shape[1])]


def csv_bytes(columns: Sequence[Sequence[Any]] | pd.DataFrame) -> bytes:
    """CSV for COPY FROM: NULL as an unquoted empty field, every other value quoted."""
    if isinstance(columns, pd.DataFrame):
        arrays = frame_arrays(columns)
    elif all(isinstance(c, pa.Array) for c in columns):
        arrays = list(columns)
    else:
        arrays = [pa.array(list(c), type=pa.string()) for c in columns]
    table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
    sink = io.BytesIO()
    pacsv.write_csv(
        table, sink, pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    )
    return sink.getvalue()


def parse_copy_csv(data: bytes, columns: Sequence[str], *, arrow: bool = False) -> pd.DataFrame:
    """COPY ... CSV output -> object frame of str/None (unquoted empty = NULL, "" = empty);
    ``arrow``: Arrow-backed string columns instead (no Python str per value: ~5x less memory)."""
    if not data:
        return text_frame(columns, {c: [] for c in columns})
    names = [f"c{i}" for i in range(len(columns))]
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        # ignore_empty_lines=False: with one column, a NULL is an empty line (else lost)
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return arrow_frame(table, columns, arrow=arrow)


class PostgresConnector(ArrowTextSource):
    """Source and target on one PostgreSQL database; one psycopg2 connection, lazily opened."""

    kind = "postgresql"

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = {k: v for k, v in params.items() if v not in (None, "")}
        self._conn: Any = None
        self._held: Any = None  # the cursor of a transaction() in progress
        self._schema: SchemaInfo | None = None
        # Rows the last batch's read-back compared (every row it wrote or left unchanged).
        self.read_back_rows = 0

    # ------------------------------------------------------------------ plumbing
    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg2.connect(**self._params)
            except psycopg2.OperationalError as exc:
                raise TransientError(f"cannot connect to PostgreSQL: {exc}") from exc
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction: commit on success, roll back on error; transient errors re-raised.
        Inside ``transaction()`` it is that held transaction (committed when it ends)."""
        if self._held is not None:
            yield self._held
            return
        conn = self._connection()
        try:
            with conn, conn.cursor() as cur:
                yield cur
        except _TRANSIENT as exc:
            if conn.closed == 0 and conn.get_transaction_status() > 2:
                conn.close()
            raise TransientError(str(exc).strip()) from exc

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Hold ONE transaction across several connector calls (CDC writes a group of changes
        and its checkpoint together): all of it commits at the end, or none of it."""
        with self._tx() as cur:
            self._held = cur
            try:
                yield cur
            finally:
                self._held = None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    # ------------------------------------------------------------------ schema
    def introspect(self) -> SchemaInfo:
        """Tables of every user schema (bare names in current_schema, else ``schema.table``)."""
        with self._tx() as cur:
            cur.execute("SELECT current_schema()")
            current = cur.fetchone()[0]
            cur.execute(_COLUMNS_SQL, (list(_SKIP_SCHEMAS),))
            col_rows = cur.fetchall()
            cur.execute(_KEYS_SQL, (list(_SKIP_SCHEMAS),))
            key_rows = cur.fetchall()
        keys: dict[tuple[str, str], list[tuple[bool, tuple[str, ...]]]] = {}
        for nsp, rel, primary, cols in key_rows:
            keys.setdefault((nsp, rel), []).append((primary, tuple(cols)))
        grouped: dict[tuple[str, str], list[tuple]] = {}
        for row in col_rows:
            grouped.setdefault((row[0], row[1]), []).append(row)
        tables = {}
        for (nsp, rel), rows in grouped.items():
            info = _table_info(nsp, rel, rows, keys.get((nsp, rel), []), current)
            tables[info.name] = info
        self._schema = SchemaInfo(tables=tables)
        return self._schema

    def live_table(self, name: str) -> TableInfo | None:
        """One table as it is now (two catalog queries for that table alone; the cache is
        refreshed); None when it does not exist. Read-only."""
        one = " AND n.nspname = %s AND c.relname = %s "
        with self._tx() as cur:
            cur.execute("SELECT current_schema()")
            current = cur.fetchone()[0]
            candidates = [(current, name)]
            if "." in name:
                candidates.insert(0, tuple(name.split(".", 1)))
            for nsp, rel in candidates:
                cur.execute(
                    _COLUMNS_SQL.replace("ORDER BY", one + "ORDER BY"),
                    (list(_SKIP_SCHEMAS), nsp, rel),
                )
                rows = cur.fetchall()
                if rows:
                    break
            else:
                info = None
            if rows:
                cur.execute(
                    _KEYS_SQL.replace("GROUP BY", one + "GROUP BY"), (list(_SKIP_SCHEMAS), nsp, rel)
                )
                keys = [(primary, tuple(cols)) for _, _, primary, cols in cur.fetchall()]
                info = _table_info(nsp, rel, rows, keys, current)
        if self._schema is not None:
            tables = {k: v for k, v in self._schema.tables.items() if k != name}
            self._schema = SchemaInfo(tables=tables | ({name: info} if info else {}))
        return info

    @staticmethod
    def table_ident(info: TableInfo) -> sql.Identifier:
        """The table's schema-qualified identifier (``schema.table``, quoted)."""
        rel = info.name.split(".", 1)[1] if info.name.startswith(f"{info.schema}.") else info.name
        return sql.Identifier(info.schema or "public", rel)

    # ------------------------------------------------------------------ source side
    def count(
        self,
        table: str,
        *,
        changed_since: ChangedSince | None = None,
        key_cols: Sequence[str] = (),
        key_range: KeyRange | None = None,
    ) -> int:
        """Exact row count of ``table`` (rows past the watermark, in the key range, when
        given); SchemaError."""
        info = self._table(table)
        where = self._where(info, key_cols, key_range, changed_since)
        with self._tx() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {} {}").format(self.table_ident(info), where))
            return int(cur.fetchone()[0])

    def max_value(self, table: str, column: str) -> str | None:
        """Highest value of ``column`` as text (a delta run's high-water mark); SchemaError."""
        info = self._table(table)
        col = info.column(column)
        with self._tx() as cur:
            cur.execute(
                sql.SQL("SELECT max({})::text FROM {}").format(
                    sql.Identifier(col.name), self.table_ident(info)
                )
            )
            return cur.fetchone()[0]

    def _where(
        self,
        info: TableInfo,
        key_cols: Sequence[str],
        key_range: KeyRange | None,
        changed_since: ChangedSince | None,
    ) -> sql.Composable:
        """WHERE clause (values bound as literals) for a key range and an optional watermark."""
        keys = info.require(key_cols)
        parts: list[sql.Composable] = []
        row = sql.SQL("({})").format(_cols(key_cols))
        for bound, op in key_range.comparisons(key_cols) if key_range else ():
            vals = sql.SQL(", ").join(
                _cast(sql.Literal(None if v is None else str(v)), k)
                for v, k in zip(bound, keys, strict=True)
            )
            parts.append(sql.SQL("{} {} ({})").format(row, sql.SQL(op), vals))
        if changed_since is not None:
            wm = info.column(changed_since[0])
            parts.append(
                sql.SQL("{} > {}").format(
                    sql.Identifier(wm.name), _cast(sql.Literal(str(changed_since[1])), wm)
                )
            )
        if not parts:
            return sql.SQL("")
        return sql.SQL("WHERE ") + sql.SQL(" AND ").join(parts)

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
        where = self._where(info, key_cols, None, changed_since)
        text_keys = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(k)) for k in key_cols
        )
        query = sql.SQL(
            "SELECT {tk} FROM (SELECT {k}, row_number() OVER (ORDER BY {k}) AS mp_rn "
            "FROM {t} {w}) s WHERE mp_rn % {n} = 0 ORDER BY mp_rn"
        ).format(
            tk=text_keys,
            k=_cols(key_cols),
            t=self.table_ident(info),
            w=where,
            n=sql.Literal(max(1, int(batch_size))),
        )
        with self._tx() as cur:
            cur.execute(query)
            bounds = [tuple(r) for r in cur.fetchall()]
            cur.execute(
                sql.SQL("SELECT EXISTS (SELECT 1 FROM {t} {w})").format(
                    t=self.table_ident(info), w=where
                )
            )
            any_rows = cur.fetchone()[0]
        return ranges_from_bounds(bounds, any_rows)

    def extract(
        self,
        table: str,
        columns: Sequence[str],
        key_cols: Sequence[str],
        key_range: KeyRange,
        *,
        changed_since: ChangedSince | None = None,
        arrow: bool = False,
    ) -> pd.DataFrame:
        """Rows of one key range, ordered by key, as object columns of str/None (COPY + pyarrow;
        ``arrow``: Arrow-backed string columns, see extract_text)."""
        info = self._table(table)
        info.require(columns)
        query = sql.SQL(
            "COPY (SELECT {c} FROM {t} {w} ORDER BY {k}) TO STDOUT WITH (FORMAT csv)"
        ).format(
            c=_cols(columns),
            t=self.table_ident(info),
            k=_cols(key_cols),
            w=self._where(info, key_cols, key_range, changed_since),
        )
        buf = io.BytesIO()
        with self._tx() as cur:
            cur.copy_expert(query, buf)
        return parse_copy_csv(buf.getvalue(), columns, arrow=arrow)

    def fetch_keys(self, table: str, key_cols: Sequence[str], keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` (source key text, ``|``-joined when composite) exist in ``table``."""
        info = self._table(table)
        cols = info.require(key_cols)
        if not keys:
            return set()
        parts = [str(k).split("|", len(cols) - 1) for k in keys]
        parts = [p for p in parts if len(p) == len(cols)]
        arrays = [[p[i] for p in parts] for i in range(len(cols))]
        names = [sql.Identifier(f"a{i}") for i in range(len(cols))]
        query = sql.SQL(
            "SELECT concat_ws('|', {tk}) FROM {t} WHERE ({k}) IN "
            "(SELECT {casts} FROM unnest({arrs}) AS u({names}))"
        ).format(
            tk=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in key_cols),
            t=self.table_ident(info),
            k=_cols(key_cols),
            casts=sql.SQL(", ").join(_cast(n, c) for n, c in zip(names, cols, strict=True)),
            arrs=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in cols),
            names=sql.SQL(", ").join(names),
        )
        with self._tx() as cur:
            cur.execute(query, [text_array(a) for a in arrays])
            return {r[0] for r in cur.fetchall()}

    def duplicate_values(self, table: str, column: str, limit: int = 20) -> tuple[int, list[str]]:
        """(how many distinct non-null values of ``column`` repeat, the first ``limit`` of
        them as text, sorted), counted by the database. Read-only; SchemaError."""
        info = self._table(table)
        name = info.column(column).name
        if (name,) in info.unique:
            return 0, []  # a unique index already guarantees it
        col = sql.Identifier(name)
        with self._tx() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT count(*) OVER (), v::text FROM (SELECT {c} AS v FROM {t} "
                    "WHERE {c} IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d ORDER BY 2 LIMIT %s"
                ).format(c=col, t=self.table_ident(info)),
                (int(limit),),
            )
            rows = cur.fetchall()
        return (int(rows[0][0]) if rows else 0), [r[1] for r in rows]

    # ------------------------------------------------------------------ ledger
    def ensure_ledger(self) -> None:
        """Create schema mp_ledger and its tables if missing. Idempotent, concurrency-safe.
        Checked every time (one catalog lookup): connectors live as long as the worker, and
        the ledger may have been dropped in between (a reset target)."""
        with self._tx() as cur:
            # When the DDL's last object exists, no DDL (ALTER TABLE would take an exclusive
            # lock and deadlock against a concurrent batch's insert).
            cur.execute(_LEDGER_READY)
            if not cur.fetchone()[0]:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('mp_ledger.ddl', 0))")
                cur.execute(_LEDGER_READY)  # another process may have finished meanwhile
                if not cur.fetchone()[0]:
                    cur.execute(_LEDGER_DDL)

    def ledger_batches(self, run_id: str) -> list[str]:
        """Batch ids recorded for ``run_id``, in commit order."""
        self.ensure_ledger()
        with self._tx() as cur:
            cur.execute(
                "SELECT batch_id FROM mp_ledger.batch WHERE run_id = %s ORDER BY committed_at, seq",
                (run_id,),
            )
            return [r[0] for r in cur.fetchall()]

    def keymap_lookup(
        self, namespace: str, entity: str, source_keys: Sequence[str]
    ) -> dict[str, str]:
        """Target keys recorded for ``source_keys`` of ``entity`` (missing keys are absent).

        Materializes the entity's pending key-map arrays first (see _materialize_keymap)."""
        self.ensure_ledger()
        self._materialize_keymap(namespace, entity)
        with self._tx() as cur:
            cur.execute(
                "SELECT source_key, target_key FROM mp_ledger.keymap WHERE namespace = %s "
                "AND entity = %s AND source_key = ANY(%s::text[])",
                (namespace, entity, text_array(source_keys)),
            )
            return dict(cur.fetchall())

    def keymap_sources(
        self, namespace: str, entity: str, target_keys: Sequence[str]
    ) -> dict[str, str]:
        """Target key -> the source key (business key) the key map records for it; keys it
        does not know are absent. Read-only but for materializing pending key-map arrays."""
        self.ensure_ledger()
        self._materialize_keymap(namespace, entity)
        with self._tx() as cur:
            cur.execute(
                "SELECT target_key, source_key FROM mp_ledger.keymap WHERE namespace = %s "
                "AND entity = %s AND target_key = ANY(%s::text[])",
                (namespace, entity, text_array(target_keys)),
            )
            return dict(cur.fetchall())

    def intended_vs_stored(
        self, table: str, key_col: str, intended: dict[str, list[str | None]], columns: list[str]
    ) -> list[dict[str, Any]]:
        """For each target key -> intended values of ``columns``: the columns whose stored
        value differs, canonically (key, column, intended, stored; a missing row is one entry
        with column "*"). Read-only."""
        info = self._table(table)
        key = info.column(key_col)
        cols = info.require(columns)
        if not intended:
            return []
        keys = list(intended)
        names = [sql.Identifier(f"c{i}") for i in range(len(cols))]
        pairs = [
            sql.SQL("{}, {}").format(
                pg_intent_sql(sql.Identifier("u", f"c{i}"), c),
                pg_canonical_sql(sql.Identifier("t", c.name), c),
            )
            for i, c in enumerate(cols)
        ]
        query = sql.SQL(
            "SELECT u.k, t.{k} IS NOT NULL, {pairs} FROM unnest(%s::text[], {arrays}) "
            "AS u(k, {names}) LEFT JOIN {t} AS t ON t.{k} = {cast}"
        ).format(
            k=sql.Identifier(key.name),
            pairs=sql.SQL(", ").join(pairs),
            arrays=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in cols),
            names=sql.SQL(", ").join(names),
            t=self.table_ident(info),
            cast=_cast(sql.SQL("u.k"), key),
        )
        arrays = [[intended[k][i] for k in keys] for i in range(len(cols))]
        with self._tx() as cur:
            cur.execute(query, [keys, *arrays])
            rows = cur.fetchall()
        return compare_detail(rows, columns)

    def _materialize_keymap(self, namespace: str, entity: str) -> None:
        """Move the (source key -> target key) arrays batches stored into mp_ledger.keymap.

        A batch keeps its pairs as two arrays in its own ledger record (one row instead of
        one indexed row per key: ~10 ms instead of ~250 ms per 50,000 rows); the first lookup
        of the entity's key map applies every pending batch in commit order with the same
        upsert an eager write would run. Idempotent; one transaction under an advisory lock."""
        with self._tx() as cur:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM mp_ledger.batch WHERE namespace = %s "
                "AND entity = %s AND keymap_source IS NOT NULL)",
                (namespace, entity),
            )
            if not cur.fetchone()[0]:
                return
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"mp_ledger.keymap\x1f{namespace}\x1f{entity}",),
            )
            cur.execute(
                "SELECT run_id, batch_id FROM mp_ledger.batch WHERE namespace = %s "
                "AND entity = %s AND keymap_source IS NOT NULL ORDER BY committed_at, seq",
                (namespace, entity),
            )
            for run_id, batch_id in cur.fetchall():
                cur.execute(
                    _KEYMAP_UPSERT.format(
                        source="SELECT u.s, u.t FROM mp_ledger.batch b, "
                        "unnest(b.keymap_source, b.keymap_target) AS u(s, t) "
                        "WHERE b.run_id = %s AND b.batch_id = %s"
                    ),
                    (namespace, entity, run_id, batch_id, run_id, batch_id),
                )
                cur.execute(
                    "UPDATE mp_ledger.batch SET keymap_source = NULL, keymap_target = NULL "
                    "WHERE run_id = %s AND batch_id = %s",
                    (run_id, batch_id),
                )

    def batch_result(self, run_id: str, batch_id: str) -> LoadResult | None:
        """The stored LoadResult (already_done=True) of a committed batch, else None. Read-only."""
        self.ensure_ledger()
        with self._tx() as cur:
            return _stored_result(cur, run_id, batch_id)

    def keymap_page(
        self, namespace: str, entity: str, *, after: str | None, limit: int
    ) -> list[str]:
        """Up to ``limit`` ledgered source keys of ``entity`` after ``after``, in key order."""
        return pg_deletes.keymap_page(self, namespace, entity, after=after, limit=limit)

    def delete_batch(self, **kwargs: Any) -> DeleteResult:
        """Apply the entity's delete policy to some source keys, ledgered (pg_deletes)."""
        return pg_deletes.delete_batch(self, **kwargs)

    @staticmethod
    def _lock(cur: Any, run_id: str, batch_id: str) -> None:
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"mp_ledger.batch\x1f{run_id}\x1f{batch_id}",),
        )

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

        Every row is read back before the commit: a row the target stored otherwise than
        meant (a typmod, a trigger, a rule) is undone and becomes a ``coerced_by_target``
        failure in the stored result (``describe_coerced`` builds it), never a loaded row.
        The ledger's row hash is that of the intended values (runs.engine.canonical).
        ``skip_unchanged`` (upsert only; delta by comparison): rows whose target row already
        holds the same values are not written and not in the ledger, only counted."""
        info = self._table(entity.target_table)
        cols, tk, ext = load_columns(info, entity, rows, source_keys)
        self.ensure_ledger()
        with self._tx() as cur:
            self._lock(cur, run_id, batch_id)
            stored = _stored_result(cur, run_id, batch_id)
            if stored is not None:
                return stored
            skip = skip_unchanged and entity.load_mode == "upsert"
            written, coerced = self._write_rows(
                cur, info, cols, tk, ext, entity.load_mode, rows, skip
            )
            result_meta = with_coerced(result_meta, coerced, rows, source_keys, describe_coerced)
            source_keys = [source_keys[w[5]] for w in written]
            inserted = sum(1 for w in written if w[1])
            changed = [w for w in written if w[4]]
            result = LoadResult(
                inserted=inserted,
                updated=len(changed) - inserted,
                unchanged=len(written) - len(changed),
                result_meta=result_meta,
                coerced=len(coerced),
            )
            # Inserted rows are kept as two arrays in the batch record (no ledger row each:
            # 16,700 rows cost ~40 ms in a COPY); overwritten rows keep a row with their
            # before-image. mp_ledger.written shows both as rows.
            _write_ledger(cur, entity, run_id, batch_id, [w for w in changed if not w[1]])
            inserts = [w for w in changed if w[1]]
            target_keys = text_array(w[0] for w in written) if written else None
            inserted_keys = inserted_hashes = None
            if inserts:  # an insert-only batch: the key map's literal serves both
                same = len(inserts) == len(written)
                inserted_keys = target_keys if same else text_array(w[0] for w in inserts)
                inserted_hashes = text_array(w[3] for w in inserts)
            counts = {k: v for k, v in result_meta.items() if k != "failures"}
            failures = result_meta.get("failures")
            cur.execute(
                "INSERT INTO mp_ledger.batch (run_id, batch_id, entity, target_table, "
                "target_key_column, result_meta, load_result, failures, namespace, "
                "keymap_source, keymap_target, inserted_keys, inserted_hashes) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::text[], %s::text[], "
                "%s::text[], %s::text[])",
                (
                    run_id,
                    batch_id,
                    entity.name,
                    info.name,
                    tk.name,
                    json.dumps(counts),
                    json.dumps(
                        {
                            "inserted": result.inserted,
                            "updated": result.updated,
                            "unchanged": result.unchanged,
                        }
                    ),
                    psycopg2.Binary(pack_failures(failures)) if failures else None,
                    namespace,
                    text_array(source_keys) if written else None,
                    target_keys,
                    inserted_keys,
                    inserted_hashes,
                ),
            )
        return result

    def _write_rows(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        ext: ColumnInfo | None,
        mode: str,
        rows: pd.DataFrame,
        skip_unchanged: bool = False,
    ) -> tuple[list[tuple], list[tuple[int, list[tuple[str, str | None, str | None]]]]]:
        """COPY rows into a temp table, then INSERT ... SELECT (ON CONFLICT) RETURNING, then
        read every row back and compare it with what was meant (``_read_back``).

        Returns (written, coerced). ``written``: (target key text, inserted?, before-image JSON
        or None, row hash of the INTENDED values, written?, row position) per row kept, in
        input order. ``coerced``: (row position, [(column, intended, stored)]) of rows the
        target stored otherwise than meant; those rows are undone (the write is rolled back to
        a savepoint and redone without them) and are not in ``written``.
        An upsert whose external ids are all new runs as a plain INSERT (no conflict check);
        a row committed meanwhile by someone else makes it fall back to ON CONFLICT.
        """
        temp = [sql.Identifier(f"c{i}") for i in range(len(cols))]
        if self._held is not None:  # an earlier write in the same held transaction made one
            cur.execute("DROP TABLE IF EXISTS pg_temp.mp_load")
        cur.execute(
            sql.SQL("CREATE TEMP TABLE mp_load (mp_ord bigserial, {}) ON COMMIT DROP").format(
                sql.SQL(", ").join(sql.SQL("{} text").format(t) for t in temp)
            )
        )
        self.read_back_rows = 0
        if not len(rows):
            return [], []
        # The read-back's row estimates (arrays, an unanalysed temp table) are far off and
        # make PostgreSQL JIT-compile its expressions: ~80 ms per batch for nothing.
        cur.execute("SET LOCAL jit = off")
        cur.copy_expert(
            sql.SQL("COPY mp_load ({}) FROM STDIN WITH (FORMAT csv)").format(
                sql.SQL(", ").join(temp)
            ),
            io.BytesIO(csv_bytes(frame_arrays(rows))),
        )
        before: dict[str, str] = {}
        upsert = mode == "upsert" and ext is not None
        if upsert:  # load_columns checked the external id is among the columns
            before = self._before_images(cur, info, tk, ext, temp[cols.index(ext)])
        coerced: list[tuple[int, list[tuple[str, str | None, str | None]]]] = []
        while True:
            cur.execute("SAVEPOINT mp_rows")
            if skip_unchanged and before:  # only rows that exist already can be unchanged
                out = self._write_changed(cur, info, cols, tk, ext, temp)
            else:
                out, before = self._insert_rows(
                    cur, info, cols, tk, ext if upsert else None, temp, before
                )
            hashes, bad = self._read_back(cur, info, cols, tk, out)
            if not bad:
                cur.execute("RELEASE SAVEPOINT mp_rows")
                break
            coerced += self._coerced_detail(cur, info, cols, tk, out, bad)
            cur.execute("ROLLBACK TO SAVEPOINT mp_rows")
            cur.execute("DELETE FROM mp_load WHERE mp_ord = ANY(%s::bigint[])", (text_array(bad),))
        return [
            (key, ins, None if ins else before.get(key), hashes[o], wrote, o - 1)
            for o, key, ins, wrote in out
        ], sorted(coerced)

    def _insert_rows(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        conflict_on: ColumnInfo | None,
        temp: list[sql.Identifier],
        before: dict[str, str],
    ) -> tuple[list[tuple[int, str, bool, bool]], dict[str, str]]:
        """INSERT (ON CONFLICT) the rows of mp_load: ((ordinal, target key, inserted?, True) in
        ordinal order, before-images). PostgreSQL returns INSERT ... SELECT ... ORDER BY rows
        in that order."""
        cur.execute("SELECT mp_ord FROM mp_load ORDER BY mp_ord")
        ords = [r[0] for r in cur.fetchall()]
        out = None
        if conflict_on is not None and not before:  # no external id exists yet: plain INSERT
            cur.execute("SAVEPOINT mp_plain")
            try:
                cur.execute(self._insert_sql(info, cols, tk, None))
                out = cur.fetchall()
                cur.execute("RELEASE SAVEPOINT mp_plain")
            except psycopg2.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT mp_plain")
                before = self._before_images(
                    cur, info, tk, conflict_on, temp[cols.index(conflict_on)]
                )
        if out is None:
            cur.execute(self._insert_sql(info, cols, tk, conflict_on))
            out = cur.fetchall()
        if len(out) != len(ords):
            raise EngineError(f"target returned {len(out)} rows for {len(ords)} written")
        return [(o, r[0], bool(r[1]), True) for o, r in zip(ords, out, strict=True)], before

    def _insert_sql(
        self,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        conflict_on: ColumnInfo | None,
    ) -> sql.Composed:
        temp = [sql.Identifier(f"c{i}") for i in range(len(cols))]
        conflict = sql.SQL("")
        if conflict_on is not None:
            conflict = sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(
                sql.Identifier(conflict_on.name),
                sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in cols
                ),
            )
        return sql.SQL(
            "INSERT INTO {t} AS mp_t ({c}) SELECT {casts} FROM mp_load ORDER BY mp_ord{conflict} "
            "RETURNING mp_t.{tk}::text, (mp_t.xmax = 0)"
        ).format(
            t=self.table_ident(info),
            c=_cols([c.name for c in cols]),
            casts=sql.SQL(", ").join(_cast(t, c) for t, c in zip(temp, cols, strict=True)),
            conflict=conflict,
            tk=sql.Identifier(tk.name),
        )

    def _read_back_from(self, info: TableInfo, tk: ColumnInfo) -> sql.Composed:
        """FROM clause pairing each loaded row (mp_load l) with its target row (t, NULL when
        gone) through two array parameters: ordinals and target key texts."""
        return sql.SQL(
            "unnest(%s::bigint[], %s::text[]) AS u(o, k) JOIN mp_load l ON l.mp_ord = u.o "
            "LEFT JOIN {t} AS t ON t.{k} = {key}"
        ).format(t=self.table_ident(info), k=sql.Identifier(tk.name), key=_cast(sql.SQL("u.k"), tk))

    def _read_back(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        out: list[tuple[int, str, bool, bool]],
    ) -> tuple[dict[int, str], list[int]]:
        """Read every written (or left unchanged) row back in the same transaction: (ordinal ->
        hash of the intended values, ordinals whose stored values differ from them). Intended
        and stored values are compared in their canonical text (runs.engine.canonical)."""
        # the intended values are read as their types once (OFFSET 0 keeps the subquery from
        # being flattened, which would cast every value twice: for the hash and the compare)
        typed = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(
                pg_intent_typed_sql(sql.Identifier("l", f"c{i}"), c), sql.Identifier(f"i{i}")
            )
            for i, c in enumerate(cols)
        )
        x = [sql.Identifier("x", f"i{i}") for i in range(len(cols))]
        intended = pg_hash_sql([pg_canonical_sql(v, c) for v, c in zip(x, cols, strict=True)])
        same = sql.SQL(" AND ").join(
            pg_same_sql(v, sql.Identifier("t", c.name), c) for v, c in zip(x, cols, strict=True)
        )
        cur.execute(
            sql.SQL(
                "SELECT x.o, {ih}, t.{k} IS NOT NULL AND {same} FROM (SELECT u.o, u.k, {typed} "
                "FROM unnest(%s::bigint[], %s::text[]) AS u(o, k) JOIN mp_load l "
                "ON l.mp_ord = u.o OFFSET 0) AS x LEFT JOIN {t} AS t ON t.{k} = {key}"
            ).format(
                ih=intended,
                same=same,
                typed=typed,
                k=sql.Identifier(tk.name),
                t=self.table_ident(info),
                key=_cast(sql.SQL("x.k"), tk),
            ),
            (text_array(o[0] for o in out), text_array(o[1] for o in out)),
        )
        got = cur.fetchall()
        self.read_back_rows += len(got)
        if len(got) != len(out):
            raise EngineError(f"read back {len(got)} rows of {len(out)} written")
        return {o: ih for o, ih, _ in got}, sorted(o for o, _, ok in got if not ok)

    def _coerced_detail(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        out: list[tuple[int, str, bool, bool]],
        bad: list[int],
    ) -> list[tuple[int, list[tuple[str, str | None, str | None]]]]:
        """(row position, [(column, intended, stored)]) of the rows the target changed; a row
        the target no longer holds is one entry ("*", "row", None)."""
        wanted = set(bad)
        rows = [o for o in out if o[0] in wanted]
        pairs = [
            sql.SQL("{}, {}").format(
                pg_intent_sql(sql.Identifier("l", f"c{i}"), c),
                pg_canonical_sql(sql.Identifier("t", c.name), c),
            )
            for i, c in enumerate(cols)
        ]
        cur.execute(
            sql.SQL("SELECT u.o, t.{k} IS NOT NULL, {pairs} FROM {src}").format(
                k=sql.Identifier(tk.name),
                pairs=sql.SQL(", ").join(pairs),
                src=self._read_back_from(info, tk),
            ),
            (text_array(o[0] for o in rows), text_array(o[1] for o in rows)),
        )
        detail = []
        for r in cur.fetchall():
            if not r[1]:
                detail.append((r[0] - 1, [("*", "row", None)]))
                continue
            values = r[2:]
            diffs = [
                (c.name, values[2 * i], values[2 * i + 1])
                for i, c in enumerate(cols)
                if values[2 * i] != values[2 * i + 1]
            ]
            detail.append((r[0] - 1, diffs))
        return detail

    def _rows_by_key_sql(
        self, info: TableInfo, key: ColumnInfo, select: sql.Composable
    ) -> sql.Composed:
        """SELECT key text, ``select`` of the rows (alias t) whose key text is in the one
        ``%s::text[]`` parameter."""
        return sql.SQL(
            "SELECT t.{k}::text, {c} FROM {t} AS t WHERE t.{k} IN "
            "(SELECT {cast} FROM unnest(%s::text[]) AS u(v))"
        ).format(
            k=sql.Identifier(key.name),
            c=select,
            t=self.table_ident(info),
            cast=_cast(sql.SQL("u.v"), key),
        )

    def _write_changed(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        ext: ColumnInfo,
        temp: list[sql.Identifier],
    ) -> list[tuple[int, str, bool, bool]]:
        """Upsert writing only rows whose values differ: (ordinal, target key, inserted?,
        written?) per row of mp_load in ordinal order; unchanged rows keep their target key."""
        names = [c.name for c in cols]
        query = self._insert_sql(info, cols, tk, ext)
        ext_temp = _cast(sql.Composed([sql.SQL("l."), temp[names.index(ext.name)]]), ext)
        cur.execute(
            sql.SQL(
                "SELECT l.mp_ord, t.{tk}::text FROM mp_load l JOIN {t} t ON t.{ext} = {ext_temp}"
            ).format(
                tk=sql.Identifier(tk.name),
                t=self.table_ident(info),
                ext=sql.Identifier(ext.name),
                ext_temp=ext_temp,
            )
        )
        existing = dict(cur.fetchall())
        target_row = sql.SQL(", ").join(_comparable(sql.SQL("mp_t"), c) for c in cols)
        new_row = sql.SQL(", ").join(_comparable(sql.SQL("EXCLUDED"), c) for c in cols)
        guarded = (
            sql.Composed([query])
            .as_string(cur)
            .replace(
                " RETURNING ",
                " WHERE ROW("
                + target_row.as_string(cur)
                + ") IS DISTINCT FROM ROW("
                + new_row.as_string(cur)
                + ") RETURNING mp_t."
                + sql.Identifier(ext.name).as_string(cur)
                + " AS mp_ext, ",
                1,
            )
        )
        cur.execute(
            sql.SQL(
                "WITH w AS ({}) SELECT l.mp_ord, w.* FROM w JOIN mp_load l "
                "ON w.mp_ext = {} ORDER BY l.mp_ord"
            ).format(sql.SQL(guarded), ext_temp)
        )
        changed = {r[0]: r[2:] for r in cur.fetchall()}
        cur.execute("SELECT mp_ord FROM mp_load ORDER BY mp_ord")
        out = []
        for (ordinal,) in cur.fetchall():
            r = changed.get(ordinal)
            if r is None:
                out.append((ordinal, existing[ordinal], False, False))
            else:
                out.append((ordinal, r[0], bool(r[1]), True))
        return out

    def _before_images(
        self, cur: Any, info: TableInfo, tk: ColumnInfo, ext: ColumnInfo, temp_col: sql.Identifier
    ) -> dict[str, str]:
        """JSON of the existing rows an upsert will overwrite, locked FOR UPDATE."""
        cur.execute(
            sql.SQL(
                "SELECT b.{tk}::text, to_jsonb(b)::text FROM {t} AS b WHERE b.{ext} IN "
                "(SELECT {cast} FROM mp_load) FOR UPDATE OF b"
            ).format(
                tk=sql.Identifier(tk.name),
                t=self.table_ident(info),
                ext=sql.Identifier(ext.name),
                cast=_cast(temp_col, ext),
            )
        )
        return dict(cur.fetchall())

    def _introspect_ledger_tables(self, run_id: str) -> None:
        with self._tx() as cur:
            cur.execute(
                "SELECT DISTINCT target_table FROM mp_ledger.batch WHERE run_id = %s", (run_id,)
            )
            tables = [r[0] for r in cur.fetchall()]
        for table in tables:
            self._table(table)

    def rollback_batch(self, run_id: str, batch_id: str) -> RollbackResult:
        """Undo one batch in ONE transaction from its ledger. Idempotent (then all zeros)."""
        self.ensure_ledger()
        self._introspect_ledger_tables(run_id)  # never introspect inside the undo transaction
        with self._tx() as cur:
            self._lock(cur, run_id, batch_id)
            cur.execute(
                "SELECT target_table, target_key_column FROM mp_ledger.batch "
                "WHERE run_id = %s AND batch_id = %s",
                (run_id, batch_id),
            )
            rec = cur.fetchone()
            if rec is None:
                return RollbackResult(batch_id=batch_id)
            info = self._table(rec[0])
            cur.execute(
                "SELECT count(*) FROM mp_ledger.written WHERE run_id = %s AND batch_id = %s",
                (run_id, batch_id),
            )
            ledger_rows = cur.fetchone()[0]
            deleted, restored = self._undo_rows(cur, info, info.column(rec[1]), run_id, batch_id)
            restored += pg_deletes.undo_deletes(
                self, cur, info, info.column(rec[1]), run_id, batch_id
            )
            counts = []
            for table in ("keymap", "row", "batch"):
                cur.execute(
                    sql.SQL("DELETE FROM {} WHERE run_id = %s AND batch_id = %s").format(
                        sql.Identifier("mp_ledger", table)
                    ),
                    (run_id, batch_id),
                )
                counts.append(cur.rowcount)
        return RollbackResult(
            batch_id=batch_id,
            deleted=deleted,
            restored=restored,
            keymap_deleted=counts[0],
            ledger_rows_deleted=ledger_rows,
            found=True,
        )

    def _undo_rows(
        self, cur: Any, info: TableInfo, tk: ColumnInfo, run_id: str, batch_id: str
    ) -> tuple[int, int]:
        ledger = sql.SQL("mp_ledger.written r")
        match = sql.SQL("r.run_id = %s AND r.batch_id = %s AND r.action = {} AND t.{} = {}")
        key = _cast(sql.SQL("r.target_key"), tk)
        cur.execute(
            sql.SQL("DELETE FROM {t} AS t USING {l} WHERE {m}").format(
                t=self.table_ident(info),
                l=ledger,
                m=match.format(sql.Literal("insert"), sql.Identifier(tk.name), key),
            ),
            (run_id, batch_id),
        )
        deleted = cur.rowcount
        restore = [c.name for c in info.columns if not c.generated and c.name != tk.name]
        if not restore:
            return deleted, 0
        cur.execute(
            sql.SQL(
                "UPDATE {t} AS t SET {sets} FROM {l} "
                "CROSS JOIN LATERAL jsonb_populate_record(NULL::{t}, r.before_image) AS p WHERE {m}"
            ).format(
                t=self.table_ident(info),
                l=ledger,
                sets=sql.SQL(", ").join(
                    sql.SQL("{0} = p.{0}").format(sql.Identifier(c)) for c in restore
                ),
                m=match.format(sql.Literal("update"), sql.Identifier(tk.name), key),
            ),
            (run_id, batch_id),
        )
        return deleted, cur.rowcount

    # ------------------------------------------------------------------ proof
    def table_checksum(self, table: str, key_cols: Sequence[str]) -> TableChecksum:
        """Row count + sum of a 64-bit md5 slice of every row's text, computed in SQL."""
        info = self._table(table)
        info.require(key_cols)
        with self._tx() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))"
                    "::bit(64)::bigint), 0)::text FROM {} AS t"
                ).format(self.table_ident(info))
            )
            rows, total = cur.fetchone()
        return TableChecksum(rows=int(rows), digest=fold_digest(int(total)))

    def row_hashes(
        self, table: str, key_col: str, keys: Sequence[str], *, columns: Sequence[str] | None = None
    ) -> dict[str, str]:
        """Row hash (hashing.row_hash over the canonical text of ``columns``, default all: what
        the ledger holds for a row written as meant) per key text found. Read-only."""
        info = self._table(table)
        key = info.column(key_col)
        names = list(columns) if columns is not None else list(info.column_names)
        cols = info.require(names)
        query = self._rows_by_key_sql(
            info,
            key,
            sql.SQL(", ").join(pg_canonical_sql(sql.Identifier("t", c.name), c) for c in cols),
        )
        with self._tx() as cur:
            cur.execute(query, (text_array(keys),))
            return {r[0]: row_hash(r[1:]) for r in cur.fetchall()}


def _table_info(
    nsp: str, rel: str, rows: list[tuple], keys: list[tuple[bool, tuple[str, ...]]], current: str
) -> TableInfo:
    pk = next((cols for primary, cols in keys if primary), ())
    columns = tuple(
        ColumnInfo(
            name=r[3],
            data_type=r[4],
            cast_type=r[4],
            base_type=r[5],
            max_length=r[6],
            nullable=r[7],
            has_default=r[8],
            generated=r[9],
            primary_key=r[3] in pk,
        )
        for r in rows
    )
    return TableInfo(
        name=rel if nsp == current else f"{nsp}.{rel}",
        columns=columns,
        row_estimate=int(rows[0][2]),
        primary_key=pk,
        unique=tuple(cols for _, cols in keys),
        schema=nsp,
    )


# Packed failures: magic, the JSON's length (8 bytes, big-endian), the JSON zstd-compressed at
# level 1 by pyarrow's bundled codec. 3,300 failures (3.4 MB of JSON): 5.5 ms and 0.51 MB,
# where zlib at level 1 took 18 ms for 0.68 MB. Older ledgers hold zlib streams; both read.
_PACK_MAGIC = b"MPz1"


def pack_failures(failures: list[dict[str, Any]]) -> bytes:
    """A batch's failures as compressed JSON (the ledger keeps them for a retry). Pure."""
    data = orjson.dumps(failures, default=str)
    packed = pa.Codec("zstd", compression_level=1).compress(data, asbytes=True)
    return _PACK_MAGIC + len(data).to_bytes(8, "big") + packed


def unpack_failures(packed: bytes) -> list[dict[str, Any]]:
    """The failures ``pack_failures`` stored (or the zlib form of older ledgers). Pure."""
    if packed.startswith(_PACK_MAGIC):
        size = int.from_bytes(packed[4:12], "big")
        data = pa.Codec("zstd").decompress(packed[12:], decompressed_size=size, asbytes=True)
    else:
        data = zlib.decompress(packed)
    return orjson.loads(data)


def _stored_result(cur: Any, run_id: str, batch_id: str) -> LoadResult | None:
    cur.execute(
        "SELECT load_result, result_meta, failures FROM mp_ledger.batch "
        "WHERE run_id = %s AND batch_id = %s",
        (run_id, batch_id),
    )
    rec = cur.fetchone()
    if rec is None:
        return None
    load, meta, packed = rec
    if packed is not None:
        meta = {**meta, "failures": unpack_failures(bytes(packed))}
    return LoadResult(
        inserted=int(load.get("inserted", 0)),
        updated=int(load.get("updated", 0)),
        unchanged=int(load.get("unchanged", 0)),
        already_done=True,
        result_meta=meta,
    )


def _write_ledger(
    cur: Any, entity: EntitySpec, run_id: str, batch_id: str, written: list[tuple]
) -> None:
    if not written:
        return
    n = len(written)
    columns = [
        [run_id] * n,
        [batch_id] * n,
        [entity.name] * n,
        [entity.target_table] * n,
        [w[0] for w in written],
        ["insert" if w[1] else "update" for w in written],
        [w[2] for w in written],
        [w[3] for w in written],
    ]
    cur.copy_expert(_LEDGER_ROW_COPY, io.BytesIO(csv_bytes(columns)))
