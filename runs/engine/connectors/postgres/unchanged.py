"""PostgreSQL side of re-runs that skip unchanged rows (runs.engine.unchanged): source row
hashes computed by the source server, and the set-based comparison with the target ledger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg2 import sql

from runs.engine.canonical import pg_hash_sql, pg_stored_hash_sql
from runs.engine.unchanged import Carried

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
"""
LEDGER_READY = "SELECT to_regclass('mp_ledger.covered') IS NOT NULL"


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
    info = conn._table(table)
    info.require([*columns, *key_cols])
    texts = [sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns]
    query = sql.SQL("SELECT {k}, {h} FROM {t} {w} ORDER BY {o}").format(
        k=key_text_sql(key_cols),
        h=pg_hash_sql(texts),
        t=conn.table_ident(info),
        w=conn._where(info, key_cols, key_range, changed_since),
        o=sql.SQL(", ").join(sql.Identifier(k) for k in key_cols),
    )
    with conn._tx() as cur:
        cur.execute(query)
        rows = cur.fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


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


def _rows_sql(conn: PostgresConnector, info: Any, tk: Any, cols: list) -> sql.Composed:
    return sql.SQL(
        "WITH st AS (SELECT DISTINCT ON (u.s) u.s, u.t, u.h, u.r, u.x "
        "FROM mp_ledger.batch b CROSS JOIN LATERAL unnest(b.state_keys, b.state_targets, "
        "b.source_hashes, b.row_hashes, b.target_xmins) AS u(s, t, h, r, x) "
        "WHERE b.seq = ANY(%s::bigint[]) ORDER BY u.s, b.seq DESC) "
        ", hit AS (SELECT c.n, st.s, st.t, st.h, st.r, t.xmin::text AS x "
        "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS c(s, h, n) "
        "JOIN st ON st.s = c.s AND st.h = c.h "
        "JOIN {t} AS t ON t.{k} = {key} "
        "WHERE CASE WHEN t.xmin::text = st.x AND age(t.xmin) < {fresh} THEN true "
        "ELSE {stored} = st.r END) "
        # the keys as a list (to drop them from the extract), every column as an array
        # literal the batch record takes back as it is
        "SELECT array_agg(s ORDER BY n), array_agg(s ORDER BY n)::text, "
        "array_agg(t ORDER BY n)::text, array_agg(h ORDER BY n)::text, "
        "array_agg(r ORDER BY n)::text, array_agg(x ORDER BY n)::text FROM hit"
    ).format(
        t=conn.table_ident(info),
        k=sql.Identifier(tk.name),
        key=_cast(sql.SQL("st.t"), tk),
        fresh=sql.Literal(_FRESH_XID_AGE),
        stored=pg_stored_hash_sql("t", cols),
    )


def _rows_params(
    seqs: list[int], keys: Sequence[str], hashes: Sequence[str]
) -> tuple[str, str, str]:
    return text_array(seqs), text_array(keys), text_array(hashes)
