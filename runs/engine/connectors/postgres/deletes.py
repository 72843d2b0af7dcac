"""PostgreSQL side of source deletes (``base.deletes.SqlDeletes``): rows deleted or marked by
target key text arrays, and their undo.

Deleted and marked rows are kept in ``mp_ledger.deleted`` with their before-image (and, for a
deleted row, the key-map entry it had), so rolling the batch back restores them exactly.
"""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from runs.engine.connectors.base import ColumnInfo, TableInfo
from runs.engine.connectors.base.deletes import SqlDeletes
from runs.engine.deletes import NOW

from .operations import _cast, text_array
from .readback import PostgresReadBack

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


class PostgresDeletes(SqlDeletes, PostgresReadBack):
    """Deleting and marking rows by target key text arrays; undoing them from before-images."""

    batch_namespace = True

    def _ensure_deleted(self, cur: Any) -> None:
        ensure_deleted_ledger(cur)

    def _images(self, cur: Any, info: TableInfo, tk: ColumnInfo, keys: list) -> dict:
        """JSON of the target rows with those key texts, locked FOR UPDATE."""
        query = self._rows_by_key_sql(info, tk, sql.SQL("to_jsonb(t)::text"))
        cur.execute(sql.Composed([query, sql.SQL(" FOR UPDATE OF t")]), (text_array(keys),))
        return dict(cur.fetchall())

    def _delete_rows(self, cur: Any, info: TableInfo, tk: ColumnInfo, keys: list) -> list:
        if not keys:
            return []
        cur.execute(
            sql.SQL(
                "DELETE FROM {t} AS t WHERE t.{k} IN "
                "(SELECT {cast} FROM unnest(%s::text[]) AS u(v)) RETURNING t.{k}::text"
            ).format(
                t=self.table_ident(info), k=sql.Identifier(tk.name), cast=_cast(sql.SQL("u.v"), tk)
            ),
            (text_array(keys),),
        )
        return [r[0] for r in cur.fetchall()]

    def _mark_rows(
        self, cur: Any, info: TableInfo, tk: ColumnInfo, mark: ColumnInfo, value: Any, keys: list
    ) -> list:
        """Set the mark column on rows not marked yet ("now": where it is still NULL)."""
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
                t=self.table_ident(info),
                c=col,
                new=new,
                k=sql.Identifier(tk.name),
                cast=_cast(sql.SQL("u.v"), tk),
                guard=guard if guard is not None else sql.SQL("t.{} IS NULL").format(col),
            ),
            (text_array(keys),),
        )
        return [r[0] for r in cur.fetchall()]

    def _undo_deletes(
        self, cur: Any, info: TableInfo, tk: ColumnInfo, run_id: str, batch_id: str
    ) -> int:
        """Inside rollback_batch's transaction: re-insert the batch's deleted rows (and key-map
        entries) and restore its marked rows from their before-images. Returns rows restored."""
        cur.execute("SELECT to_regclass('mp_ledger.deleted') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        cols = [c.name for c in info.columns if not c.generated or c.name == tk.name]
        restore = [c.name for c in info.columns if not c.generated and c.name != tk.name]
        t = self.table_ident(info)
        match = sql.SQL("r.run_id = %s AND r.batch_id = %s AND r.action = {}")
        cur.execute(
            sql.SQL(
                "INSERT INTO {t} ({c}) OVERRIDING SYSTEM VALUE SELECT {pc} "
                "FROM mp_ledger.deleted r CROSS JOIN LATERAL "
                "jsonb_populate_record(NULL::{t}, r.before_image) AS p "
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
                    "jsonb_populate_record(NULL::{t}, r.before_image) AS p "
                    "WHERE {m} AND t.{k} = {key}"
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
