"""Key-level reconciliation, data-diff style: compare checksums per key range, narrow the ranges
that differ, and only fetch row hashes for small ranges that still differ.

Two *sides* are compared, e.g. the ledger (the hash of every row as the run wrote it) and the
target table as it is now. A side maps each row to an integer *position* (the key itself for an
integer key, else a 60-bit hash of the key text) and can report, for a list of half-open
position ranges ``[lo, hi)``, the row count and the sum of 64-bit row digests in each range, and
the (key -> row hash) pairs in a range. ``PgSide`` does this in SQL on PostgreSQL;
``MemorySide`` holds a dict (tests, small targets). Plain Python: no Django import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from psycopg2 import sql

from runs.engine import reconcile_marks as marks
from runs.engine.canonical import pg_stored_hash_sql
from runs.engine.connectors.base import ColumnInfo, type_family
from runs.engine.reconcile_marks import MarkSpec

MASK64 = (1 << 64) - 1
Ranges = Sequence[tuple[int, int]]
Stats = list[tuple[int, int]]  # per range: (row count, digest sum mod 2**64)


def key_position(key: str, integer: bool) -> int:
    """A row's position in the key space: the integer key, else md5(key)[:15] as an int. Pure."""
    if integer:
        return int(key)
    return int(hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:15], 16)


def hash_digest(row_hash: str) -> int:
    """The 64-bit digest of a row hash (its first 16 hex digits) summed per range. Pure."""
    return int(row_hash[:16], 16)


class RangeSide(Protocol):
    """One side of a comparison (see the module docstring)."""

    def bounds(self) -> tuple[int, int] | None: ...
    def stats(self, ranges: Ranges) -> Stats: ...
    def hashes(self, ranges: Ranges) -> dict[str, str]: ...


@dataclass
class MemorySide:
    """A side held in memory: key text -> row hash."""

    rows: Mapping[str, str]
    integer_keys: bool = True
    _pos: dict[str, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._pos = {k: key_position(k, self.integer_keys) for k in self.rows}

    def bounds(self) -> tuple[int, int] | None:
        """(min, max) position, None when empty."""
        return (min(self._pos.values()), max(self._pos.values())) if self._pos else None

    def stats(self, ranges: Ranges) -> Stats:
        """(count, digest sum) per range."""
        out = []
        for lo, hi in ranges:
            inside = [k for k, p in self._pos.items() if lo <= p < hi]
            out.append((len(inside), sum(hash_digest(self.rows[k]) for k in inside) & MASK64))
        return out

    def hashes(self, ranges: Ranges) -> dict[str, str]:
        """Key -> hash of the rows inside any of the ranges."""
        return {
            k: self.rows[k] for k, p in self._pos.items() if any(lo <= p < hi for lo, hi in ranges)
        }


@dataclass
class KeyDiff:
    """Keys only in the expected side (missing), only in the actual side (extra), or differing."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    expected_rows: int = 0
    actual_rows: int = 0
    levels: int = 0
    ranges_checked: int = 0
    rows_fetched: int = 0
    marked: int = 0  # rows the run marked (delete policy "mark"), expected marked and matching

    @property
    def clean(self) -> bool:
        """True when both sides hold exactly the same rows."""
        return not (self.missing or self.extra or self.changed)


def split(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` cut into at most ``parts`` contiguous non-empty ranges. Pure."""
    width = hi - lo
    cuts = sorted({lo + width * i // parts for i in range(parts)} | {hi})
    return list(zip(cuts, cuts[1:], strict=False))


def diff_sides(
    expected: RangeSide,
    actual: RangeSide,
    *,
    factor: int = 32,
    leaf_rows: int = 2_000,
    max_levels: int = 12,
) -> KeyDiff:
    """Compare two sides by range checksums, narrowing only where they differ. Read-only.

    Each level asks each side once for the stats of every range still in doubt; ranges with at
    most ``leaf_rows`` rows on both sides (or a width of 1) are settled by comparing row hashes.
    """
    diff = KeyDiff()
    bounds = [b for b in (expected.bounds(), actual.bounds()) if b is not None]
    if not bounds:
        return diff
    doubtful = [(min(b[0] for b in bounds), max(b[1] for b in bounds) + 1)]
    leaves: list[tuple[int, int]] = []
    while doubtful and diff.levels < max_levels:
        diff.levels += 1
        ranges = [r for lo, hi in doubtful for r in split(lo, hi, factor)]
        left, right = expected.stats(ranges), actual.stats(ranges)
        diff.ranges_checked += len(ranges)
        if diff.levels == 1:
            diff.expected_rows = sum(s[0] for s in left)
            diff.actual_rows = sum(s[0] for s in right)
        doubtful = []
        for rng, a, b in zip(ranges, left, right, strict=True):
            if a == b:
                continue
            small = max(a[0], b[0]) <= leaf_rows or rng[1] - rng[0] <= 1
            (leaves if small else doubtful).append(rng)
    leaves += doubtful
    if leaves:
        _settle(expected.hashes(leaves), actual.hashes(leaves), diff)
    return diff


def _settle(want: dict[str, str], have: dict[str, str], diff: KeyDiff) -> None:
    diff.rows_fetched = len(want) + len(have)
    diff.missing = sorted(set(want) - set(have), key=_natural)
    diff.extra = sorted(set(have) - set(want), key=_natural)
    diff.changed = sorted(
        (k for k in want.keys() & have.keys() if want[k] != have[k]), key=_natural
    )


def _natural(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)


# ---------------------------------------------------------------- PostgreSQL sides

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


@dataclass
class PgSide:
    """A side computed in SQL from ``source`` (a FROM item yielding columns k, h: key text and
    row hash). ``integer`` says whether keys are integers (positions = keys)."""

    cursor: CursorFactory
    source: sql.Composable
    params: tuple = ()
    integer: bool = True

    def _query(
        self, select: sql.Composable, tail: sql.Composable, params: tuple, select_params: tuple = ()
    ) -> list[tuple]:
        pos = pg_position_sql(sql.SQL("s.k"), self.integer)
        query = sql.SQL(
            "SELECT {sel} FROM (SELECT {pos} AS p, s.k, s.h FROM {src} AS s) AS q {tail}"
        ).format(sel=select, pos=pos, src=self.source, tail=tail)
        with self.cursor() as cur:
            cur.execute(query, select_params + self.params + params)
            return cur.fetchall()

    def bounds(self) -> tuple[int, int] | None:
        """(min, max) position, None when empty."""
        row = self._query(sql.SQL("min(p), max(p)"), sql.SQL(""), ())[0]
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def stats(self, ranges: Ranges) -> Stats:
        """(count, digest sum) per range, one query: width_bucket over the sorted cut points."""
        cuts = sorted({c for r in ranges for c in r})
        rows = self._query(
            sql.SQL(
                "width_bucket(p, %s::bigint[]) AS b, count(*), "
                "sum(('x' || substr(h, 1, 16))::bit(64)::bigint)"
            ),
            sql.SQL("WHERE p >= %s AND p < %s GROUP BY 1"),
            (cuts[0], cuts[-1]),
            (cuts,),
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
    stored values, comparable with the ledger's hash of the intended values)."""
    return sql.SQL("(SELECT t.{k}::text AS k, {h} AS h FROM {t} AS t)").format(
        k=sql.Identifier(key.name), h=pg_row_hash_sql(columns), t=table
    )


LEDGER_SOURCE = sql.SQL(
    "(SELECT DISTINCT ON (r.target_key) r.target_key AS k, r.row_hash AS h "
    "FROM mp_ledger.covered r WHERE r.run_id = %s AND r.entity = %s "
    "ORDER BY r.target_key, r.seq DESC)"
)


# The same, without the keys the run itself deleted after its last write of them (source
# deletes applied by a delta or sync run, mp_ledger.deleted): they are meant to be gone.
LEDGER_SOURCE_AFTER_DELETES = sql.SQL(
    "(SELECT w.k, w.h FROM (SELECT DISTINCT ON (r.target_key) r.target_key AS k, "
    "r.row_hash AS h, r.seq AS s FROM mp_ledger.covered r WHERE r.run_id = %s "
    "AND r.entity = %s ORDER BY r.target_key, r.seq DESC) AS w WHERE NOT EXISTS ("
    "SELECT 1 FROM mp_ledger.deleted d JOIN mp_ledger.batch b ON b.run_id = d.run_id "
    "AND b.batch_id = d.batch_id WHERE d.run_id = %s AND d.entity = %s "
    "AND d.action = 'delete' AND d.target_key = w.k AND b.seq > w.s))"
)


def _ledger_source(cursor: CursorFactory, run_id: str, entity: str) -> tuple[sql.Composable, tuple]:
    """The ledger side's FROM item and parameters (deletes counted when the run has any)."""
    with cursor() as cur:
        cur.execute("SELECT to_regclass('mp_ledger.deleted') IS NOT NULL")
        present = cur.fetchone()[0]
        if present:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM mp_ledger.deleted WHERE run_id = %s "
                "AND entity = %s AND action = 'delete')",
                (run_id, entity),
            )
            present = cur.fetchone()[0]
    if present:
        return LEDGER_SOURCE_AFTER_DELETES, (run_id, entity, run_id, entity)
    return LEDGER_SOURCE, (run_id, entity)


def integer_key(key: ColumnInfo) -> bool:
    """True when positions can be the key values themselves."""
    return type_family(key.cast_type) == "integer"


def reconcile_in_memory(
    target: Any,
    *,
    table: str,
    key: ColumnInfo,
    columns: Sequence[str],
    run_id: str,
    entity: str,
    **kwargs: int,
) -> KeyDiff:
    """The same comparison as ``reconcile_pg`` for targets without SQL hashing (SQLite): both
    sides are read into memory (ledger hashes; every target row hashed in Python). Read-only;
    meant for targets of up to a few million rows."""
    from runs.engine.connectors.base import KeyRange

    integer = integer_key(key)
    ledger = MemorySide(target.ledger_row_hashes(run_id, entity), integer)
    keys = target.extract(table, [key.name], [key.name], KeyRange())[key.name]
    actual = MemorySide(
        target.row_hashes(table, key.name, [str(k) for k in keys], columns=columns), integer
    )
    span = ledger.bounds()
    if span is None or not integer:
        return diff_sides(ledger, actual, **kwargs)
    top = max(span[1], (actual.bounds() or span)[1])
    return diff_sides(ledger, _Clipped(actual, (span[0], top)), **kwargs)


def reconcile_pg(
    cursor: CursorFactory,
    *,
    table: sql.Composable,
    key: ColumnInfo,
    columns: Sequence[ColumnInfo],
    run_id: str,
    entity: str,
    mark: MarkSpec | None = None,
    **kwargs: int,
) -> KeyDiff:
    """Ledger (rows as the run meant to write them: the rows it wrote and those it found
    holding that already, mp_ledger.covered) vs the target table now, for one entity.
    Read-only; psycopg2 errors propagate. For integer keys the target side starts at the run's
    lowest key (older rows are not the run's); rows above it that the run did not write are
    listed as extra (present in the target, not written by the run). With ``mark`` (delete
    policy "mark") each row's mark state is compared too (see reconcile_marks)."""
    integer = integer_key(key)
    marked = 0
    if mark is None:
        source, params = _ledger_source(cursor, run_id, entity)
        target = PgSide(cursor, table_source(table, key, columns), (), integer)
    else:
        with cursor() as cur:
            present = marks.marks_present(cur, run_id, entity)
            marked = marks.marked_count(cur, run_id, entity) if present else 0
        source, params = marks.ledger_source(
            table, key, columns, mark, run_id, entity, with_marks=present
        )
        target = PgSide(cursor, marks.target_source(table, key, columns, mark), (), integer)
    ledger = PgSide(cursor, source, params, integer)
    span = ledger.bounds()
    if span is None:
        diff = diff_sides(ledger, MemorySide({}, integer), **kwargs)
    elif not integer:
        diff = diff_sides(ledger, target, **kwargs)
    else:
        top = max(span[1], (target.bounds() or span)[1])
        diff = diff_sides(ledger, _Clipped(target, (span[0], top)), **kwargs)
    diff.marked = marked
    return diff


@dataclass
class _Clipped:
    """A side restricted to a position span (rows outside are not "extra")."""

    side: RangeSide
    span: tuple[int, int]

    def bounds(self) -> tuple[int, int] | None:
        return self.span

    def _clip(self, ranges: Ranges) -> list[tuple[int, int]]:
        return [(max(lo, self.span[0]), min(hi, self.span[1] + 1)) for lo, hi in ranges]

    def stats(self, ranges: Ranges) -> Stats:
        clipped = self._clip(ranges)
        keep = [i for i, (lo, hi) in enumerate(clipped) if lo < hi]
        got = self.side.stats([clipped[i] for i in keep]) if keep else []
        out: Stats = [(0, 0)] * len(ranges)
        for i, s in zip(keep, got, strict=True):
            out[i] = s
        return out

    def hashes(self, ranges: Ranges) -> dict[str, str]:
        clipped = [r for r in self._clip(ranges) if r[0] < r[1]]
        return self.side.hashes(clipped) if clipped else {}


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
        # Most rows come out of arrays (mp_ledger.covered), which the planner guesses at
        # 200 distinct keys: it then probes the table's index once per ledger row (2.6 s for
        # 834,122 rows) where a hash join takes 1.4 s. A run's rows are never few enough for
        # the nested loop to win by much.
        cur.execute("SET LOCAL enable_nestloop = off")
        cur.execute(query, (run_id, entity))
        result = cur.fetchall()
    if by_category and column:
        return {("" if k is None else k): int(n) for k, n in result}
    return result[0][0]


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
