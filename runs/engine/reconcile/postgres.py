"""A side computed in SQL on PostgreSQL (``PgSide``) and the FROM items it reads:
a target table's key and row hash (``table_source``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

from runs.engine.canonical import pg_stored_hash_sql
from runs.engine.connectors.base import ColumnInfo, type_family

from .ranges import MASK64, Ranges, Stats

CursorFactory = Callable[[], AbstractContextManager[Any]]


def pg_row_hash_sql(columns: Sequence[ColumnInfo], alias: str = "t") -> sql.Composable:
    """SQL computing the row hash of the canonical stored values of ``columns`` (table
    ``alias``): hashing.row_hash over runs.engine.canonical.pg_canonical_sql of each."""
    return pg_stored_hash_sql(alias, columns)


def pg_position_sql(key_text: sql.Composable, integer: bool) -> sql.Composable:
    """SQL for ``key_position`` of a key given as text."""
    if integer:
        return sql.SQL("({})::bigint").format(key_text)
    return sql.SQL("('x' || substr(md5({}), 1, 15))::bit(60)::bigint").format(key_text)


# The checksums' statement over a whole side: its GROUP BY of ~32 buckets hashed, not sorted
# (the planner guesses a side at a few thousand rows and sorted all of them, spilling 50-110
# MB at 834,122 rows), no JIT (enable_sort = off prices the ledger side's DISTINCT ON sort at
# disable_cost), no parallel workers: the report runs it beside the expected side on a full
# machine, where workers only add their CPU (gather, startup; ~0.4 s at 1 M rows).
_STATS_SETTINGS = (
    "SET LOCAL enable_sort = off",
    "SET LOCAL jit = off",
    "SET LOCAL max_parallel_workers_per_gather = 0",
)
# A row hash's 64-bit digest summed per range on this side: hashtextextended of its text (C
# collation: its bytes), one call, where the first 16 hex digits read as bit(64) took four
# (~0.3 µs a row on each side). Both sides of a PgSide comparison use it; ``hash_digest``
# is the in-memory sides' digest (two MemorySides compared), never mixed with this one.
_DIGEST = 'hashtextextended(h COLLATE "C", 0)'


@dataclass
class PgSide:
    """A side computed in SQL from ``source`` (a FROM item yielding columns k, h: key text and
    row hash; and p, the position, when ``positioned``). ``integer`` says whether keys are
    integers (positions = keys)."""

    cursor: CursorFactory
    source: sql.Composable
    params: tuple = ()
    integer: bool = True
    # a FROM item with the same keys (each possibly more than once), cheaper to scan: the
    # bounds depend on the keys only (e.g. the ledger's rows without DISTINCT ON's sort)
    keys_source: sql.Composable | None = None
    # the source (and keys_source) yield p, the position, themselves (an integer key column
    # read as bigint: no text round trip per row, min/max from the key's index)
    positioned: bool = False
    _bounds: tuple[tuple[int, int] | None] | None = field(default=None, init=False, repr=False)

    def _query(
        self,
        select: sql.Composable,
        tail: sql.Composable,
        params: tuple,
        select_params: tuple = (),
        source: sql.Composable | None = None,
        settings: Sequence[str] = (),
    ) -> list[tuple]:
        pos = sql.SQL("s.p") if self.positioned else pg_position_sql(sql.SQL("s.k"), self.integer)
        query = sql.SQL(
            "SELECT {sel} FROM (SELECT {pos} AS p, s.k, s.h FROM {src} AS s) AS q {tail}"
        ).format(sel=select, pos=pos, src=source or self.source, tail=tail)
        with self.cursor() as cur:
            for setting in settings:
                cur.execute(setting)
            cur.execute(query, select_params + self.params + params)
            return cur.fetchall()

    def bounds(self) -> tuple[int, int] | None:
        """(min, max) position, None when empty; asked once (reconcile_pg and diff_sides both
        need them: the ledger's were read twice, 6.3 s of a 10 M-row report)."""
        if self._bounds is None:
            row = self._query(sql.SQL("min(p), max(p)"), sql.SQL(""), (), (), self.keys_source)
            self._bounds = (None if row[0][0] is None else (int(row[0][0]), int(row[0][1])),)
        return self._bounds[0]

    def stats(self, ranges: Ranges) -> Stats:
        """(count, digest sum) per range, one query: width_bucket over the sorted cut points,
        grouped by hashing (``_STATS_SETTINGS``). Read-only."""
        cuts = sorted({c for r in ranges for c in r})
        rows = self._query(
            sql.SQL("width_bucket(p, %s::bigint[]) AS b, count(*), sum({})").format(
                sql.SQL(_DIGEST)
            ),
            sql.SQL("WHERE p >= %s AND p < %s GROUP BY 1"),
            (cuts[0], cuts[-1]),
            (cuts,),
            settings=_STATS_SETTINGS,
        )
        found = {int(b): (int(n), int(s) & MASK64) for b, n, s in rows}
        index = {c: i + 1 for i, c in enumerate(cuts)}
        return [found.get(index[lo], (0, 0)) for lo, _hi in ranges]

    def hashes(self, ranges: Ranges) -> dict[str, str]:
        """Key -> row hash of the rows inside the ranges (one query)."""
        los, his = [r[0] for r in ranges], [r[1] for r in ranges]
        rows = self._query(
            sql.SQL("q.k, q.h"),
            sql.SQL(
                "WHERE EXISTS (SELECT 1 FROM unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi) "
                "WHERE q.p >= r.lo AND q.p < r.hi)"
            ),
            (los, his),
        )
        return {k: h for k, h in rows}


def table_source(
    table: sql.Composable, key: ColumnInfo, columns: Sequence[ColumnInfo]
) -> sql.Composable:
    """FROM item (k, h) over a target table: key text and row hash of ``columns`` (canonical
    stored values, comparable with the ledger's hash of the intended values); with p, the
    key as bigint, when ``integer_key(key)``."""
    pos = sql.SQL("t.{}::bigint AS p, ").format(sql.Identifier(key.name))
    return sql.SQL("(SELECT {p}t.{k}::text AS k, {h} AS h FROM {t} AS t)").format(
        p=pos if integer_key(key) else sql.SQL(""),
        k=sql.Identifier(key.name),
        h=pg_row_hash_sql(columns),
        t=table,
    )


def integer_key(key: ColumnInfo) -> bool:
    """True when positions can be the key values themselves (an integer key: read as bigint
    it is the integer its text spells, so ``table_source`` yields it without a text round
    trip)."""
    return type_family(key.cast_type) == "integer"
