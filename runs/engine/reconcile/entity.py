"""One entity's reconciliation: the run's ledger against the target table now
(``reconcile_pg`` in SQL, ``reconcile_in_memory`` for targets without SQL hashing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql

from runs.engine import reconcile_marks as marks
from runs.engine.connectors.base import ColumnInfo
from runs.engine.reconcile_marks import MarkSpec

from .postgres import CursorFactory, PgSide, integer_key, table_source
from .ranges import KeyDiff, MemorySide, Ranges, RangeSide, Stats, diff_sides

LEDGER_SOURCE = sql.SQL(
    "(SELECT DISTINCT ON (r.target_key) r.target_key AS k, r.row_hash AS h "
    "FROM mp_ledger.covered r WHERE r.run_id = %s AND r.entity = %s "
    "ORDER BY r.target_key, r.seq DESC)"
)


# The keys of LEDGER_SOURCE, a key once per row that covers it (same parameters): its bounds
# without the sort DISTINCT ON needs (at 3 M rows its two calls: 2.2 → 1.1 s)
LEDGER_KEYS = sql.SQL(
    "(SELECT r.target_key AS k, NULL::text AS h FROM mp_ledger.covered r "
    "WHERE r.run_id = %s AND r.entity = %s)"
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
        target = PgSide(cursor, table_source(table, key, columns), (), integer, positioned=integer)
    else:
        with cursor() as cur:
            present = marks.marks_present(cur, run_id, entity)
            marked = marks.marked_count(cur, run_id, entity) if present else 0
        source, params = marks.ledger_source(
            table, key, columns, mark, run_id, entity, with_marks=present
        )
        target = PgSide(cursor, marks.target_source(table, key, columns, mark), (), integer)
    keys = LEDGER_KEYS if source is LEDGER_SOURCE else None  # deletes narrow the key set
    ledger = PgSide(cursor, source, params, integer, keys_source=keys)
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
