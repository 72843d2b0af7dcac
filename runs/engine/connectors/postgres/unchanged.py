"""PostgreSQL side of re-runs that skip unchanged rows (runs.engine.unchanged): source row
hashes computed by the source server, and the set-based comparison with the target ledger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg2 import sql

from runs.engine.canonical import pg_hash_bytes_sql, pg_hash_sql, pg_stored_hash_sql
from runs.engine.errors import EngineError
from runs.engine.unchanged import Carried, SameRange, range_digest_text

from .operations import _cast, text_array

if TYPE_CHECKING:
    from runs.engine.connectors.base import ChangedSince, KeyRange
    from runs.engine.connectors.postgres.base import PostgresConnector
    from runs.engine.snapshot import EntitySpec

# A written row's version (xmin) proves it untouched only while its transaction id cannot
# have wrapped around (2^31); older versions are compared by their row hash instead.
_FRESH_XID_AGE = 1_000_000_000
# Columns added to mp_ledger.batch, and the view of every row a run answers for (runs last in
# the ledger DDL; the ledger is complete when the view exists).
LEDGER_DDL = """
ALTER TABLE mp_ledger.batch ADD COLUMN IF NOT EXISTS state_keys text[],
    ADD COLUMN IF NOT EXISTS state_targets text[], ADD COLUMN IF NOT EXISTS source_hashes text[],
    ADD COLUMN IF NOT EXISTS row_hashes text[], ADD COLUMN IF NOT EXISTS target_xmins text[],
    ADD COLUMN IF NOT EXISTS first_key text, ADD COLUMN IF NOT EXISTS last_key text,
    ADD COLUMN IF NOT EXISTS rules_hash text;
CREATE INDEX IF NOT EXISTS batch_row_state_idx ON mp_ledger.batch (namespace, entity, rules_hash)
    WHERE rules_hash IS NOT NULL;
ALTER TABLE mp_ledger.batch ADD COLUMN IF NOT EXISTS kept_keys text[],
    ADD COLUMN IF NOT EXISTS kept_hashes text[];
-- Every row a run answers for, with the hash of the row it meant: the rows it wrote and the
-- rows it found already holding that (a batch with row state lists all of them in its state
-- arrays; any other keeps its unchanged rows in kept_keys). Each row once per batch.
CREATE OR REPLACE VIEW mp_ledger.covered AS
    SELECT r.run_id, r.batch_id, r.entity, r.target_table, r.target_key, r.row_hash, b.seq
    FROM mp_ledger.row r JOIN mp_ledger.batch b USING (run_id, batch_id)
    WHERE b.state_targets IS NULL
    UNION ALL
    SELECT b.run_id, b.batch_id, b.entity, b.target_table, u.k, u.h, b.seq
    FROM mp_ledger.batch b CROSS JOIN LATERAL unnest(b.inserted_keys, b.inserted_hashes) AS u(k, h)
    WHERE b.inserted_keys IS NOT NULL AND b.state_targets IS NULL
    UNION ALL
    SELECT b.run_id, b.batch_id, b.entity, b.target_table, u.k, u.h, b.seq
    FROM mp_ledger.batch b CROSS JOIN LATERAL unnest(b.state_targets, b.row_hashes) AS u(k, h)
    WHERE b.state_targets IS NOT NULL
    UNION ALL
    SELECT b.run_id, b.batch_id, b.entity, b.target_table, u.k, u.h, b.seq
    FROM mp_ledger.batch b CROSS JOIN LATERAL unnest(b.kept_keys, b.kept_hashes) AS u(k, h)
    WHERE b.kept_keys IS NOT NULL;
-- the digest of every source row of the batch's key range (unchanged.range_digest)
ALTER TABLE mp_ledger.batch ADD COLUMN IF NOT EXISTS range_digest text;
-- the row state's arrays of hashes do not compress: out of line as they are, no pglz attempt
-- on each write (a range carried whole copies two of 20,000: ~6x the copy itself;
-- inserted_hashes uses lz4, whose attempt is cheap)
ALTER TABLE mp_ledger.batch ALTER COLUMN source_hashes SET STORAGE EXTERNAL,
    ALTER COLUMN row_hashes SET STORAGE EXTERNAL, ALTER COLUMN kept_hashes SET STORAGE EXTERNAL;
-- the row state's key and version arrays compress (keys and xmins count up): lz4 in ~1/4 of
-- pglz's time, as the key map's (a 16,700-row record 22.5 -> 17.1 ms of backend CPU). Only
-- speed depends on it: skipped on servers built without lz4, and not re-checked by
-- LEDGER_READY (a ledger made before keeps pglz; both read alike).
DO $mp$ BEGIN
    EXECUTE 'ALTER TABLE mp_ledger.batch ALTER COLUMN state_keys SET COMPRESSION lz4, '
        'ALTER COLUMN state_targets SET COMPRESSION lz4, '
        'ALTER COLUMN target_xmins SET COMPRESSION lz4, '
        'ALTER COLUMN kept_keys SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL;
END $mp$;
"""
LEDGER_READY = (
    "SELECT to_regclass('mp_ledger.covered') IS NOT NULL AND EXISTS (SELECT 1 FROM "
    "pg_attribute WHERE attrelid = to_regclass('mp_ledger.batch') AND attname = 'range_digest')"
    " AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('mp_ledger.batch')"
    " AND attname IN ('source_hashes', 'row_hashes', 'kept_hashes') AND attstorage <> 'e')"
)


def key_text_sql(key_cols: Sequence[str]) -> sql.Composable:
    """SQL for transform.source_key_text: the key as text, composite parts joined by '|'."""
    parts = [sql.SQL("coalesce({}::text, '')").format(sql.Identifier(k)) for k in key_cols]
    return sql.SQL(" || '|' || ").join(parts)


def source_row_hashes(
    conn: PostgresConnector,
    table: str,
    columns: Sequence[str],
    key_cols: Sequence[str],
    key_range: KeyRange,
    *,
    changed_since: ChangedSince | None = None,
) -> tuple[list[str], list[str]]:
    """(source key texts, source hashes) of one key range in key order, computed by the
    server: hashing.row_hash of each row's text values of ``columns``. Read-only."""
    rows = _hashed_rows(conn, table, columns, key_cols, key_range, changed_since)
    query = sql.SQL("{rows} ORDER BY {o}").format(
        rows=rows, o=sql.SQL(", ").join(sql.Identifier(k) for k in key_cols)
    )
    with conn._tx() as cur:
        cur.execute(query)
        found = cur.fetchall()
    return [r[0] for r in found], [r[1] for r in found]


def source_range_digest(
    conn: PostgresConnector,
    table: str,
    columns: Sequence[str],
    key_cols: Sequence[str],
    key_range: KeyRange,
    *,
    changed_since: ChangedSince | None = None,
) -> str:
    """unchanged.range_digest of one key range, computed by the server: it reads and hashes
    every row as ``source_row_hashes`` does, and returns only the count and the sha256 of the
    rows' 16-byte hashes in byte order (one sort of 16-byte values, no text-to-bit conversion
    per row: 50 ms instead of 84 per 20,000 rows of 13 columns). The key columns must be among
    ``columns`` (as ``batch.source_columns`` puts them): the source hash is then what binds
    each row to its key. Read-only; raises EngineError otherwise."""
    if not set(key_cols) <= set(columns):
        raise EngineError(f"a range digest hashes the key columns too: {list(key_cols)}")
    rows = _hashed_rows(conn, table, columns, key_cols, key_range, changed_since, raw=True)
    query = sql.SQL(
        "SELECT count(*), encode(sha256(coalesce(string_agg(r.h, ''::bytea ORDER BY r.h), "
        "''::bytea)), 'hex') FROM (SELECT substring(q.mp_h from 1 for 16) AS h FROM ({rows}) "
        "AS q) AS r"
    ).format(rows=rows)
    with conn._tx() as cur:
        cur.execute(query)
        count, sha = cur.fetchone()
    return range_digest_text(int(count), sha)


def _hashed_rows(
    conn: PostgresConnector,
    table: str,
    columns: Sequence[str],
    key_cols: Sequence[str],
    key_range: KeyRange,
    changed_since: ChangedSince | None,
    *,
    raw: bool = False,
) -> sql.Composed:
    """SELECT of (mp_k: the key text, mp_h: the source hash) of every row of the key range;
    ``raw``: mp_h is the whole sha256 (bytea) the source hash is the hex head of."""
    info = conn._table(table)
    info.require([*columns, *key_cols])
    refs = [sql.Identifier(c) for c in columns]
    texts = [sql.SQL("{}::text").format(r) for r in refs]
    return sql.SQL("SELECT {k} AS mp_k, {h} AS mp_h FROM {t} {w}").format(
        k=key_text_sql(key_cols),
        h=pg_hash_bytes_sql(texts, refs) if raw else pg_hash_sql(texts, refs),
        t=conn.table_ident(info),
        w=conn._where(info, key_cols, key_range, changed_since),
    )


def row_state_exists(
    conn: PostgresConnector, namespace: str, entity: str, rules: str, run_id: str
) -> bool:
    """Whether a live batch record of another run than ``run_id`` stored row state of
    ``entity`` under these rules (a first run's later batches compare nothing)."""
    conn.ensure_ledger()
    with conn._tx() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM mp_ledger.batch WHERE namespace = %s AND entity = %s "
            "AND rules_hash = %s AND run_id <> %s)",
            (namespace, entity, rules, run_id),
        )
        return bool(cur.fetchone()[0])


def keymap_fingerprint(conn: PostgresConnector, namespace: str, entity: str) -> str:
    """The entity's key map as "count:digest" (the sum of each (source key, target key) pair's
    64-bit md5 digest, order-independent): it changes when a key is added, removed or mapped to
    another target key. Read-only but for materializing pending key-map arrays first."""
    conn.ensure_ledger()
    conn._materialize_keymap(namespace, entity)
    with conn._tx() as cur:
        cur.execute(
            "SELECT count(*), coalesce(sum(('x' || substr(md5(source_key || chr(31) || "
            "target_key), 1, 16))::bit(64)::bigint), 0) FROM mp_ledger.keymap "
            "WHERE namespace = %s AND entity = %s",
            (namespace, entity),
        )
        count, total = cur.fetchone()
    return f"{count}:{int(total) & (2**64 - 1):016x}"


def unchanged_rows(
    conn: PostgresConnector,
    *,
    entity: EntitySpec,
    namespace: str,
    rules_hash: str,
    source_keys: Sequence[str],
    source_hashes: Sequence[str],
) -> Carried:
    """The keys among ``source_keys`` a batch may skip: the latest live batch record holding
    the key (found by its first or last key) stored the same source hash under the same rules,
    and the target row still holds what it wrote — its version (xmin) is the one written, or
    its canonical stored values hash to the intended row hash (a row rewritten with the same
    values). Read-only; one query for the records, one for the rows."""
    if not source_keys:
        return Carried()
    conn.ensure_ledger()
    info = conn._table(entity.target_table)
    tk = info.column(entity.target_key)
    cols = info.require([f.target for f in entity.fields])
    keyset = set(source_keys)
    with conn._tx() as cur:
        cur.execute(
            "SELECT seq, first_key, last_key FROM mp_ledger.batch WHERE namespace = %s AND "
            "entity = %s AND rules_hash = %s AND target_table = %s",
            (namespace, entity.name, rules_hash, info.name),
        )
        seqs = [s for s, first, last in cur.fetchall() if first in keyset or last in keyset]
        if not seqs:
            return Carried()
        cur.execute("SET LOCAL jit = off")
        cur.execute(_rows_sql(conn, info, tk, cols), _rows_params(seqs, source_keys, source_hashes))
        keys, *literals = cur.fetchone()
    return Carried(source_keys=keys, literals=tuple(literals)) if keys else Carried()


def unchanged_range(
    conn: PostgresConnector,
    *,
    entity: EntitySpec,
    namespace: str,
    rules_hash: str,
    digest: str,
) -> SameRange | None:
    """The latest live batch record of ``entity`` under these rules whose key range had the
    same digest (the same source rows), when every target row it answers for still holds
    what was written (as ``unchanged_rows`` tells it: version, else stored values' hash) and
    it neither deduplicated nor loaded a row without state; None otherwise. Its state arrays
    stay on the server (``Carried.from_seq``: the new record copies them). Read-only; one
    query for the record, one for its rows and keys."""
    conn.ensure_ledger()
    info = conn._table(entity.target_table)
    tk = info.column(entity.target_key)
    cols = info.require([f.target for f in entity.fields])
    with conn._tx() as cur:
        cur.execute(
            "SELECT seq, run_id, batch_id, first_key, last_key, "
            "coalesce((result_meta->>'failed')::int, 0), "
            "coalesce((result_meta->>'filtered')::int, 0), "
            "coalesce((result_meta->>'duplicates')::int, 0), "
            "coalesce((result_meta->>'loaded')::int, 0), cardinality(state_keys) "
            "FROM mp_ledger.batch WHERE namespace = %s AND entity = %s AND rules_hash = %s "
            "AND target_table = %s AND range_digest = %s ORDER BY seq DESC LIMIT 1",
            (namespace, entity.name, rules_hash, info.name, digest),
        )
        found = cur.fetchone()
        if found is None:
            return None
        seq, run_id, batch_id, first, last, failed, filtered, duplicates, loaded, n = found
        if duplicates or loaded != (n or 0):
            return None
        cur.execute("SET LOCAL jit = off")
        cur.execute(_range_sql(conn, info, tk, cols), (seq,))
        same, keys = cur.fetchone()
    if same != loaded:
        return None
    carried = Carried(source_keys=keys, from_seq=seq) if keys else Carried()
    return SameRange(run_id, batch_id, first, last, failed, filtered, carried)


def _range_sql(conn: PostgresConnector, info: Any, tk: Any, cols: list) -> sql.Composed:
    return _against_target(
        "SELECT (SELECT count(*) FROM unnest(b.state_targets, b.row_hashes, b.target_xmins) "
        "AS u(tk, rh, xm) JOIN {t} AS t ON t.{k} = {key} WHERE {written}), "
        "b.state_keys FROM mp_ledger.batch b WHERE b.seq = %s",
        conn,
        info,
        tk,
        cols,
        ("u.tk", "u.xm", "u.rh"),
    )


def _against_target(
    query: str, conn: PostgresConnector, info: Any, tk: Any, cols: list, names: tuple
) -> sql.Composed:
    """``query`` with {t} the target table, {k} its key column, {key} the ledger's target key
    (``names[0]``) cast to it and {written} the as-written test of row ``t`` against the
    ledger's version and row hash (``names[1]``, ``names[2]``)."""
    key, version, row_hash = (sql.SQL(name) for name in names)
    return sql.SQL(query).format(
        t=conn.table_ident(info),
        k=sql.Identifier(tk.name),
        key=_cast(key, tk),
        written=_as_written(cols, version, row_hash),
    )


def _as_written(cols: list, version: sql.Composable, row_hash: sql.Composable) -> sql.Composed:
    """Whether target row ``t`` still holds what was written: the same version (while young
    enough to be unambiguous), else its canonical stored values hash to the intended hash."""
    return sql.SQL(
        "CASE WHEN t.xmin::text = {version} AND age(t.xmin) < {fresh} THEN true "
        "ELSE {stored} = {row_hash} END"
    ).format(
        version=version,
        row_hash=row_hash,
        fresh=sql.Literal(_FRESH_XID_AGE),
        stored=pg_stored_hash_sql("t", cols),
    )


def _rows_sql(conn: PostgresConnector, info: Any, tk: Any, cols: list) -> sql.Composed:
    return _against_target(
        "WITH st AS (SELECT DISTINCT ON (u.s) u.s, u.t, u.h, u.r, u.x "
        "FROM mp_ledger.batch b CROSS JOIN LATERAL unnest(b.state_keys, b.state_targets, "
        "b.source_hashes, b.row_hashes, b.target_xmins) AS u(s, t, h, r, x) "
        "WHERE b.seq = ANY(%s::bigint[]) ORDER BY u.s, b.seq DESC) "
        ", hit AS (SELECT c.n, st.s, st.t, st.h, st.r, t.xmin::text AS x "
        "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS c(s, h, n) "
        "JOIN st ON st.s = c.s AND st.h = c.h "
        "JOIN {t} AS t ON t.{k} = {key} WHERE {written}) "
        # the keys as a list (to drop them from the extract), every column as an array
        # literal the batch record takes back as it is
        "SELECT array_agg(s ORDER BY n), array_agg(s ORDER BY n)::text, "
        "array_agg(t ORDER BY n)::text, array_agg(h ORDER BY n)::text, "
        "array_agg(r ORDER BY n)::text, array_agg(x ORDER BY n)::text FROM hit",
        conn,
        info,
        tk,
        cols,
        ("st.t", "st.x", "st.r"),
    )


def _rows_params(
    seqs: list[int], keys: Sequence[str], hashes: Sequence[str]
) -> tuple[str, str, str]:
    return text_array(seqs), text_array(keys), text_array(hashes)
