"""PostgreSQL side of source deletes: key-map paging, ledgered delete/mark, and their undo.

Deleted and marked rows are kept in ``mp_ledger.deleted`` with their before-image (and, for a
deleted row, the key-map entry it had), so rolling the batch back restores them exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg2 import sql

from runs.engine.connectors.base import ColumnInfo, TableInfo
from runs.engine.connectors.base.deletes import delete_counts, deleted_rows, stored_delete
from runs.engine.deletes import NOW, DeleteResult, check_policy

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec

    from .base import PostgresConnector

_DDL = """
CREATE TABLE IF NOT EXISTS mp_ledger.deleted (
    run_id text NOT NULL, batch_id text NOT NULL, entity text NOT NULL,
    target_table text NOT NULL, target_key text NOT NULL,
    action text NOT NULL CHECK (action IN ('delete', 'mark')),
    before_image jsonb NOT NULL, namespace text NOT NULL, source_key text NOT NULL,
    keymap_run_id text, keymap_batch_id text);
CREATE INDEX IF NOT EXISTS deleted_batch_idx ON mp_ledger.deleted (run_id, batch_id);
"""


def ensure_deleted_ledger(cur: Any) -> None:
    """Create mp_ledger.deleted when missing (inside the caller's transaction). Idempotent."""
    cur.execute("SELECT to_regclass('mp_ledger.deleted') IS NOT NULL")
    if cur.fetchone()[0]:
        return
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('mp_ledger.deleted', 0))")
    cur.execute(_DDL)


def keymap_page(
    conn: PostgresConnector, namespace: str, entity: str, *, after: str | None, limit: int
) -> list[str]:
    """Up to ``limit`` ledgered source keys of ``entity`` after ``after``, in key order."""
    conn.ensure_ledger()
    conn._materialize_keymap(namespace, entity)
    with conn._tx() as cur:
        cur.execute(
            "SELECT source_key FROM mp_ledger.keymap WHERE namespace = %s AND entity = %s "
            "AND (%s::text IS NULL OR source_key > %s::text) ORDER BY source_key LIMIT %s",
            (namespace, entity, after, after, int(limit)),
        )
        return [r[0] for r in cur.fetchall()]


def delete_batch(
    conn: PostgresConnector,
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
    from .operations import text_array

    check_policy(entity)
    info = conn._table(entity.target_table)
    tk = info.column(entity.target_key)
    mark = info.column(entity.delete_mark_column) if entity.delete_policy == "mark" else None
    conn.ensure_ledger()
    conn._materialize_keymap(namespace, entity.name)  # key-map pairs still kept in batch arrays
    with conn._tx() as cur:
        ensure_deleted_ledger(cur)
        conn._lock(cur, run_id, batch_id)
        stored = _stored_result(cur, run_id, batch_id)
        if stored is not None:
            return stored_delete(stored)
        cur.execute(
            "SELECT source_key, target_key, run_id, batch_id FROM mp_ledger.keymap "
            "WHERE namespace = %s AND entity = %s AND source_key = ANY(%s::text[]) FOR UPDATE",
            (namespace, entity.name, text_array(source_keys)),
        )
        pairs = {r[1]: r for r in cur.fetchall()}  # target key -> keymap row
        if not pairs:
            return DeleteResult()
        images = _before_images(conn, cur, info, tk, mark, list(pairs))
        if mark is None:
            done = _delete_rows(conn, cur, info, tk, list(images))
            cur.execute(
                "DELETE FROM mp_ledger.keymap WHERE namespace = %s AND entity = %s "
                "AND source_key = ANY(%s::text[])",
                (namespace, entity.name, text_array(p[0] for p in pairs.values())),
            )
        else:
            done = _mark_rows(conn, cur, info, tk, mark, entity.delete_mark_value, list(images))
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
        cur.executemany(
            "INSERT INTO mp_ledger.deleted (run_id, batch_id, entity, target_table, target_key, "
            "action, before_image, namespace, source_key, keymap_run_id, keymap_batch_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
            rows,
        )
        counts = delete_counts(done, marked=mark is not None)
        cur.execute(
            "INSERT INTO mp_ledger.batch (run_id, batch_id, entity, target_table, "
            "target_key_column, result_meta, load_result, namespace) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                run_id,
                batch_id,
                entity.name,
                info.name,
                tk.name,
                json.dumps(counts),
                json.dumps(counts),
                namespace,
            ),
        )
    return DeleteResult(**counts)


def _before_images(
    conn: PostgresConnector,
    cur: Any,
    info: TableInfo,
    tk: ColumnInfo,
    mark: ColumnInfo | None,
    keys: list[str],
) -> dict[str, str]:
    """JSON of the target rows with those key texts, locked FOR UPDATE."""
    from .operations import text_array

    query = conn._rows_by_key_sql(info, tk, sql.SQL("to_jsonb(t)::text"))
    cur.execute(sql.Composed([query, sql.SQL(" FOR UPDATE OF t")]), (text_array(keys),))
    return dict(cur.fetchall())


def _delete_rows(
    conn: PostgresConnector, cur: Any, info: TableInfo, tk: ColumnInfo, keys: list[str]
) -> list[str]:
    from .operations import _cast, text_array

    if not keys:
        return []
    cur.execute(
        sql.SQL(
            "DELETE FROM {t} AS t WHERE t.{k} IN (SELECT {cast} FROM unnest(%s::text[]) AS u(v)) "
            "RETURNING t.{k}::text"
        ).format(
            t=conn.table_ident(info), k=sql.Identifier(tk.name), cast=_cast(sql.SQL("u.v"), tk)
        ),
        (text_array(keys),),
    )
    return [r[0] for r in cur.fetchall()]


def _mark_rows(
    conn: PostgresConnector,
    cur: Any,
    info: TableInfo,
    tk: ColumnInfo,
    mark: ColumnInfo,
    value: str | None,
    keys: list[str],
) -> list[str]:
    """Set the mark column on rows not marked yet ("now": where it is still NULL)."""
    from .operations import _cast, text_array

    if not keys:
        return []
    col = sql.Identifier(mark.name)
    if value == NOW:
        new, guard = sql.SQL("CAST(now() AS {})").format(sql.SQL(mark.cast_type)), None
    else:
        new = _cast(sql.Literal(value), mark)
        guard = sql.SQL("t.{} IS DISTINCT FROM {}").format(col, new)
    cur.execute(
        sql.SQL(
            "UPDATE {t} AS t SET {c} = {new} WHERE t.{k} IN (SELECT {cast} FROM "
            "unnest(%s::text[]) AS u(v)) AND {guard} RETURNING t.{k}::text"
        ).format(
            t=conn.table_ident(info),
            c=col,
            new=new,
            k=sql.Identifier(tk.name),
            cast=_cast(sql.SQL("u.v"), tk),
            guard=guard if guard is not None else sql.SQL("t.{} IS NULL").format(col),
        ),
        (text_array(keys),),
    )
    return [r[0] for r in cur.fetchall()]


def undo_deletes(
    conn: PostgresConnector, cur: Any, info: TableInfo, tk: ColumnInfo, run_id: str, batch_id: str
) -> int:
    """Inside rollback_batch's transaction: re-insert the batch's deleted rows (and key-map
    entries) and restore its marked rows from their before-images. Returns rows restored."""
    cur.execute("SELECT to_regclass('mp_ledger.deleted') IS NOT NULL")
    if not cur.fetchone()[0]:
        return 0
    cols = [c.name for c in info.columns if not c.generated or c.name == tk.name]
    restore = [c.name for c in info.columns if not c.generated and c.name != tk.name]
    t = conn.table_ident(info)
    match = sql.SQL("r.run_id = %s AND r.batch_id = %s AND r.action = {}")
    cur.execute(
        sql.SQL(
            "INSERT INTO {t} ({c}) OVERRIDING SYSTEM VALUE SELECT {pc} FROM mp_ledger.deleted r "
            "CROSS JOIN LATERAL jsonb_populate_record(NULL::{t}, r.before_image) AS p "
            "WHERE {m} AND r.before_image <> '{{}}'::jsonb"
        ).format(
            t=t,
            c=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
            pc=sql.SQL(", ").join(sql.Identifier("p", c) for c in cols),
            m=match.format(sql.Literal("delete")),
        ),
        (run_id, batch_id),
    )
    restored = cur.rowcount
    cur.execute(
        "INSERT INTO mp_ledger.keymap (namespace, entity, source_key, target_key, run_id, "
        "batch_id) SELECT namespace, entity, source_key, target_key, keymap_run_id, "
        "keymap_batch_id FROM mp_ledger.deleted WHERE run_id = %s AND batch_id = %s "
        "AND action = 'delete' ON CONFLICT DO NOTHING",
        (run_id, batch_id),
    )
    if restore:
        key = sql.SQL("CAST(r.target_key AS {})").format(sql.SQL(tk.cast_type))
        cur.execute(
            sql.SQL(
                "UPDATE {t} AS t SET {sets} FROM mp_ledger.deleted r CROSS JOIN LATERAL "
                "jsonb_populate_record(NULL::{t}, r.before_image) AS p WHERE {m} AND t.{k} = {key}"
            ).format(
                t=t,
                sets=sql.SQL(", ").join(
                    sql.SQL("{0} = p.{0}").format(sql.Identifier(c)) for c in restore
                ),
                m=match.format(sql.Literal("mark")),
                k=sql.Identifier(tk.name),
                key=key,
            ),
            (run_id, batch_id),
        )
        restored += cur.rowcount
    cur.execute(
        "DELETE FROM mp_ledger.deleted WHERE run_id = %s AND batch_id = %s", (run_id, batch_id)
    )
    return restored
