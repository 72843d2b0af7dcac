"""Values, rows and aggregates of the target rows a run wrote: field-by-field
comparison, row fetches, sums and counts, orphaned children."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from psycopg2 import sql

from runs.engine.connectors.base import ColumnInfo

from .postgres import CursorFactory

# ---------------------------------------------------------------- values, rows, aggregates


def values_equal(expected: str | None, actual: str | None) -> bool:
    """Text values equal, or equal as numbers, or equal as date/times. Pure."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if expected == actual:
        return True
    try:
        return Decimal(expected) == Decimal(actual)
    except (InvalidOperation, ValueError):
        pass
    try:
        return _as_datetime(expected) == _as_datetime(actual)
    except ValueError:
        return False


def _as_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    return value.replace(tzinfo=None)


def compare_rows(
    expected: Mapping[str, Mapping[str, str | None]], actual: Mapping[str, Mapping[str, str | None]]
) -> list[dict[str, Any]]:
    """Field-by-field differences (key, field, expected, actual); a missing row is one entry."""
    out: list[dict[str, Any]] = []
    for key, want in expected.items():
        have = actual.get(key)
        if have is None:
            out.append({"key": key, "field": "*", "expected": "row", "actual": None})
            continue
        out += [
            {"key": key, "field": f, "expected": v, "actual": have.get(f)}
            for f, v in want.items()
            if not values_equal(v, have.get(f))
        ]
    return out


def pg_fetch_rows(
    cursor: CursorFactory,
    *,
    table: sql.Composable,
    key: ColumnInfo,
    keys: Sequence[str],
    columns: Sequence[str],
) -> dict[str, dict[str, str | None]]:
    """Target rows (as text) for the given key texts. Read-only."""
    query = sql.SQL(
        "SELECT t.{k}::text, {c} FROM {t} AS t WHERE t.{k} = ANY(CAST(%s AS {a}))"
    ).format(
        k=sql.Identifier(key.name),
        t=table,
        c=sql.SQL(", ").join(sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in columns),
        a=sql.SQL(key.cast_type + "[]"),
    )
    with cursor() as cur:
        cur.execute(query, (list(keys),))
        return {r[0]: dict(zip(columns, r[1:], strict=True)) for r in cur.fetchall()}


def _run_rows(table: sql.Composable, key: ColumnInfo) -> sql.Composable:
    return sql.SQL(
        "{t} AS t WHERE EXISTS (SELECT 1 FROM mp_ledger.covered l WHERE l.run_id = %s "
        "AND l.entity = %s AND CAST(l.target_key AS {ct}) = t.{k})"
    ).format(t=table, ct=sql.SQL(key.cast_type), k=sql.Identifier(key.name))


def pg_run_aggregate(
    cursor: CursorFactory,
    *,
    table: sql.Composable,
    key: ColumnInfo,
    run_id: str,
    entity: str,
    column: str | None = None,
    by_category: bool = False,
) -> Any:
    """Over the target rows this run answers for (wrote, or found holding what it meant:
    mp_ledger.covered): count (no column), sum(column), or row count per column value
    (by_category). Read-only."""
    rows = _run_rows(table, key)
    if by_category and column:
        query = sql.SQL("SELECT t.{c}::text, count(*) FROM {r} GROUP BY 1").format(
            c=sql.Identifier(column), r=rows
        )
    elif column:
        query = sql.SQL("SELECT sum(t.{c}::numeric) FROM {r}").format(
            c=sql.Identifier(column), r=rows
        )
    else:
        query = sql.SQL("SELECT count(*) FROM {r}").format(r=rows)
    with cursor() as cur:
        _plan_for_runs(cur)
        cur.execute(query, (run_id, entity))
        result = cur.fetchall()
    if by_category and column:
        return {k: int(n) for k, n in result}  # NULL: None, apart from ""
    return result[0][0]


@dataclass
class RunAggregates:
    """What ``pg_run_aggregates`` found: the row count, each sum (None when every value is
    NULL, or there are no rows) and each column's row count per value (NULL as None, apart
    from "")."""

    rows: int
    sums: dict[str, Any]
    counts: dict[str, dict[str, int]]


def pg_run_aggregates(
    cursor: CursorFactory,
    *,
    table: sql.Composable,
    key: ColumnInfo,
    run_id: str,
    entity: str,
    sums: Sequence[str] = (),
    categories: Sequence[str] = (),
) -> RunAggregates:
    """``pg_run_aggregate``'s count, the sum of each of ``sums`` and the row count per value of
    each of ``categories`` in ONE scan of the rows this run answers for (GROUPING SETS: one
    set per category column, and the empty set for the count and sums). Read-only."""
    sums, categories = list(dict.fromkeys(sums)), list(dict.fromkeys(categories))
    if len(categories) == 1:
        return _one_category(cursor, table, key, run_id, entity, sums, categories[0])
    values = [sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in categories]
    totals = [sql.SQL("sum(t.{}::numeric)").format(sql.Identifier(c)) for c in sums]
    select = [sql.SQL("count(*)"), *totals]
    group = sql.SQL("")
    if categories:
        select = [sql.SQL("GROUPING({})").format(sql.SQL(", ").join(values)), *values, *select]
        sets = [sql.SQL("({})").format(v) for v in values] + [sql.SQL("()")]
        group = sql.SQL(" GROUP BY GROUPING SETS ({})").format(sql.SQL(", ").join(sets))
    query = sql.SQL("SELECT {s} FROM {r}{g}").format(
        s=sql.SQL(", ").join(select), r=_run_rows(table, key), g=group
    )
    with cursor() as cur:
        _plan_for_runs(cur)
        cur.execute(query, (run_id, entity))
        result = cur.fetchall()
    out = RunAggregates(0, dict.fromkeys(sums), {c: {} for c in categories})
    every = (1 << len(categories)) - 1  # GROUPING(...) of the empty set: every bit set
    for row in result:
        if categories and row[0] != every:  # one category column's set: its bit is clear
            i = next(i for i in range(len(categories)) if not row[0] >> (len(values) - 1 - i) & 1)
            value = row[1 + i]
            out.counts[categories[i]][value] = int(row[-1 - len(sums)])
            continue
        tail = row[len(row) - 1 - len(sums) :]
        out.rows, out.sums = int(tail[0]), dict(zip(sums, tail[1:], strict=True))
    return out


def _one_category(
    cursor: CursorFactory,
    table: sql.Composable,
    key: ColumnInfo,
    run_id: str,
    entity: str,
    sums: list[str],
    category: str,
) -> RunAggregates:
    """``pg_run_aggregates`` of one category column: one GROUP BY by its value, hashed (the
    GROUPING SETS form sorted every row: 8.3 M rows spilled to disk at 10 M); the count and
    each sum are the groups' added up (every row is in exactly one group, NULL its own)."""
    totals = [sql.SQL("sum(t.{}::numeric)").format(sql.Identifier(c)) for c in sums]
    query = sql.SQL("SELECT t.{c}::text, count(*){s} FROM {r} GROUP BY 1").format(
        c=sql.Identifier(category),
        s=sql.SQL("").join(sql.SQL(", ") + t for t in totals),
        r=_run_rows(table, key),
    )
    with cursor() as cur:
        _plan_for_runs(cur)
        # the planner guesses a run's rows at a few thousand (arrays): it would sort them
        cur.execute("SET LOCAL enable_sort = off")
        cur.execute(query, (run_id, entity))
        result = cur.fetchall()
    out = RunAggregates(0, dict.fromkeys(sums), {category: {}})
    for value, n, *group_sums in result:
        out.rows += int(n)
        out.counts[category][value] = int(n)
        for column, total in zip(sums, group_sums, strict=True):
            if total is not None:
                before = out.sums[column]
                out.sums[column] = total if before is None else before + total
    return out


def _plan_for_runs(cur: Any) -> None:
    # Most rows come out of arrays (mp_ledger.covered), which the planner guesses at
    # 200 distinct keys: it then probes the table's index once per ledger row (2.6 s for
    # 834,122 rows) where a hash join takes 1.4 s. A run's rows are never few enough for
    # the nested loop to win by much.
    cur.execute("SET LOCAL enable_nestloop = off")
    # The nested loops it cannot avoid (unnest of each batch record's arrays) then cost
    # the planner's disable_cost (1e10) each, far past jit_above_cost: PostgreSQL
    # JIT-compiled ~135 functions per aggregate, ~1.1 s over 470 rows where the query
    # itself takes 1 ms.
    cur.execute("SET LOCAL jit = off")
    # No parallel workers: the report asks these beside its expected side on a full machine,
    # where a parallel hash join only adds the workers' CPU (its shared hash built in three
    # processes; ~0.1-0.2 s of 1.0 s at 834,122 rows).
    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")


def pg_orphans(
    cursor: CursorFactory,
    *,
    child: sql.Composable,
    column: str,
    parent: sql.Composable,
    parent_key: str,
    limit: int = 20,
) -> tuple[int, list[str]]:
    """Children whose ``column`` is set but names no parent row: (count, first values)."""
    query = sql.SQL(
        "SELECT c.{c}::text FROM {ch} AS c WHERE c.{c} IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM {p} AS p WHERE p.{pk} = c.{c})"
    ).format(c=sql.Identifier(column), ch=child, p=parent, pk=sql.Identifier(parent_key))
    with cursor() as cur:
        outer = sql.SQL("SELECT count(*), (array_agg(v))[1:%s] FROM ({}) AS o(v)")
        cur.execute(outer.format(query), (limit,))
        n, sample = cur.fetchone()
    return int(n), list(sample or [])


def iter_chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of ``items``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
