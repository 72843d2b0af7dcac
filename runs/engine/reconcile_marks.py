"""Key-level reconciliation of an entity whose delete policy is *mark* (PostgreSQL targets).

A source delete marks the target row (sets a column, e.g. ``deleted_at`` or a status) instead
of deleting it, so both sides carry each row's mark state next to its hash:

- expected (the ledger): a key the run wrote and did not mark afterwards is *unmarked* with the
  hash it was written with; a key the run marked after its last write (or without writing it)
  is *marked*, with the hash of its before-image (``mp_ledger.deleted``) as marked (the mark
  column set to the mark value; for "now", to the value the row holds);
- actual (the target): each row's hash and whether its mark column says *marked* (NOT NULL for
  "now", equal to the mark value otherwise).

A marked row therefore matches (it is neither extra nor changed) and is counted; a live row that
got marked, or a marked row that lost its mark, differs ("changed"). Plain Python: no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql

from runs.engine.canonical import pg_stored_hash_sql
from runs.engine.connectors.base import ColumnInfo
from runs.engine.deletes import NOW


@dataclass(frozen=True)
class MarkSpec:
    """The entity's mark column and value ("now": the time it was marked)."""

    column: ColumnInfo
    value: str | None


_WRITTEN = sql.SQL(
    "(SELECT DISTINCT ON (r.target_key) r.target_key AS k, r.row_hash AS h, r.seq AS s "
    "FROM mp_ledger.covered r WHERE r.run_id = %s AND r.entity = %s "
    "ORDER BY r.target_key, r.seq DESC)"
)
_MARKS = sql.SQL(
    "(SELECT DISTINCT ON (d.target_key) d.target_key AS k, d.before_image AS img, b.seq AS s "
    "FROM mp_ledger.deleted d JOIN mp_ledger.batch b ON b.run_id = d.run_id "
    "AND b.batch_id = d.batch_id WHERE d.run_id = %s AND d.entity = %s AND d.action = 'mark' "
    "ORDER BY d.target_key, b.seq DESC)"
)
_NO_MARKS = sql.SQL("(SELECT NULL::text AS k, NULL::jsonb AS img, NULL::bigint AS s WHERE false)")


def _marked(mark: MarkSpec, alias: str) -> sql.Composable:
    col = sql.Identifier(alias, mark.column.name)
    if mark.value == NOW:
        return sql.SQL("{} IS NOT NULL").format(col)
    value = sql.SQL("CAST({} AS {})").format(
        sql.Literal(mark.value), sql.SQL(mark.column.cast_type)
    )
    return sql.SQL("{} IS NOT DISTINCT FROM {}").format(col, value)


def target_source(
    table: sql.Composable, key: ColumnInfo, columns: Sequence[ColumnInfo], mark: MarkSpec
) -> sql.Composable:
    """FROM item (k, h) over the target: key text, md5 of row hash + mark state."""
    return sql.SQL(
        "(SELECT t.{k}::text AS k, md5({h} || CASE WHEN {m} THEN ':m' ELSE ':-' END) AS h "
        "FROM {t} AS t)"
    ).format(
        k=sql.Identifier(key.name),
        h=pg_stored_hash_sql("t", columns),
        m=_marked(mark, "t"),
        t=table,
    )


def ledger_source(
    table: sql.Composable,
    key: ColumnInfo,
    columns: Sequence[ColumnInfo],
    mark: MarkSpec,
    run_id: str,
    entity: str,
    *,
    with_marks: bool,
) -> tuple[sql.Composable, tuple]:
    """FROM item (k, h) of what the run meant: written-and-unmarked keys with their ledger
    hash, marked keys with their before-image as marked; and its parameters."""
    marks = _MARKS if with_marks else _NO_MARKS
    if mark.value == NOW:  # the time it was marked is the row's: only marked-or-not is checked
        value = sql.SQL("(SELECT to_jsonb(c.{m}) FROM {t} AS c WHERE c.{k}::text = mk.k)").format(
            m=sql.Identifier(mark.column.name), t=table, k=sql.Identifier(key.name)
        )
    else:
        value = sql.SQL("to_jsonb(CAST({} AS {}))").format(
            sql.Literal(mark.value), sql.SQL(mark.column.cast_type)
        )
    query = sql.SQL(
        "(SELECT w.k, md5(w.h || ':-') AS h FROM {w} AS w WHERE NOT EXISTS "
        "(SELECT 1 FROM {marks} AS mk WHERE mk.k = w.k AND mk.s > w.s) "
        "UNION ALL SELECT mk.k, md5({h} || ':m') AS h FROM {marks} AS mk "
        "CROSS JOIN LATERAL jsonb_populate_record(NULL::{t}, "
        "mk.img || jsonb_build_object({name}, {value})) AS t "
        "WHERE NOT EXISTS (SELECT 1 FROM {w} AS w WHERE w.k = mk.k AND w.s > mk.s))"
    ).format(
        w=_WRITTEN,
        marks=marks,
        h=pg_stored_hash_sql("t", columns),
        t=table,
        name=sql.Literal(mark.column.name),
        value=value,
    )
    run = (run_id, entity)
    params = run + (run if with_marks else ()) + (run if with_marks else ()) + run
    return query, params


def marks_present(cur: Any, run_id: str, entity: str) -> bool:
    """Whether the run marked any row of the entity (mp_ledger.deleted may not exist)."""
    cur.execute("SELECT to_regclass('mp_ledger.deleted') IS NOT NULL")
    if not cur.fetchone()[0]:
        return False
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM mp_ledger.deleted WHERE run_id = %s AND entity = %s "
        "AND action = 'mark')",
        (run_id, entity),
    )
    return bool(cur.fetchone()[0])


def marked_count(cur: Any, run_id: str, entity: str) -> int:
    """Keys the run marked after its last write of them: expected to be marked now."""
    cur.execute(
        sql.SQL(
            "SELECT count(*) FROM {marks} AS mk WHERE NOT EXISTS "
            "(SELECT 1 FROM {w} AS w WHERE w.k = mk.k AND w.s > mk.s)"
        ).format(marks=_MARKS, w=_WRITTEN),
        (run_id, entity, run_id, entity),
    )
    return int(cur.fetchone()[0])
