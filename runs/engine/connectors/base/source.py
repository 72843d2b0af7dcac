"""The source role written once for every SQL connector (the ``Source`` protocol's methods):
argument checks, the SQL all dialects share and the result shapes here; what a database does
its own way comes from its ``Dialect`` (``ops``) and a few hooks its ``source.py`` defines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .cache import SchemaCache
from .dialect import Clause, Dialect
from .schema import ChangedSince, ColumnInfo, KeyRange, TableInfo, ranges_from_bounds

if TYPE_CHECKING:
    import pandas as pd


class SqlSource(SchemaCache):
    """``Source`` on a SQL database. Hooks: ``_queries`` (plumbing), ``_key_compare``,
    ``_after``, ``_bounds_query``, ``_extract``, ``_found_keys``."""

    ops: Dialect
    _queries: Callable[..., list[list[tuple]]]  # the plumbing's: rows of each (query, args)

    def count(
        self,
        table: str,
        *,
        changed_since: ChangedSince | None = None,
        key_cols: Sequence[str] = (),
        key_range: KeyRange | None = None,
    ) -> int:
        """``Source.count``; also of one key range when given."""
        info = self._table(table)
        where, args = self._filter(info, key_cols, key_range, changed_since)
        query = self.ops.sql("SELECT count(*) FROM {t} {w}", t=self.ops.table(info), w=where)
        return int(self._queries((query, args))[0][0][0])

    def max_value(self, table: str, column: str) -> str | None:
        """``Source.max_value``."""
        info = self._table(table)
        col = info.column(column)
        ops = self.ops
        inner = ops.sql("SELECT max({c}) AS {c} FROM {t}", c=ops.quote(col.name), t=ops.table(info))
        query = ops.sql("SELECT {v} FROM ({i}) m", v=ops.text(col), i=inner)
        return self._queries((query, []))[0][0][0]

    def key_ranges(
        self,
        table: str,
        key_cols: Sequence[str],
        batch_size: int,
        *,
        changed_since: ChangedSince | None = None,
    ) -> list[KeyRange]:
        """``Source.key_ranges``: a window query (no OFFSET) and an EXISTS, in one transaction.
        The bounds are the keys of rows number n·batch_size short of the last row, so a table
        of N rows gives ceil(N / batch_size) ranges — no empty last one. "Short of the last
        row" is "a next row exists" (``lead`` over the same window as the row number: one
        window pass; ``count(*) OVER ()`` kept the whole table in a tuplestore, 0.31 s at 1 M
        rows)."""
        info = self._table(table)
        keys = info.require(key_cols)
        where, args = self._filter(info, key_cols, None, changed_since)
        ops = self.ops
        cols = ops.join(ops.quote(k.name) for k in keys)
        bounds = ops.sql(
            "SELECT {b} FROM (SELECT {k}, row_number() OVER (ORDER BY {k}) AS mp_rn, "
            "lead(1) OVER (ORDER BY {k}) AS mp_next FROM {t} {w}) s "
            "WHERE " + ops.nth_row + " AND mp_next IS NOT NULL ORDER BY mp_rn",
            b=ops.join(ops.bound(k) for k in keys),
            k=cols,
            t=ops.table(info),
            w=where,
        )
        exists = ops.sql("SELECT EXISTS (SELECT 1 FROM {t} {w})", t=ops.table(info), w=where)
        found, any_rows = self._queries((bounds, [*args, max(1, int(batch_size))]), (exists, args))
        return ranges_from_bounds([tuple(r) for r in found], bool(any_rows[0][0]))

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
        """``Source.extract``; ``arrow``: Arrow-backed string columns (see ``extract_text``)
        where the connector has them."""
        info = self._extract_table(table)
        cols = info.require(columns)
        where, args = self._filter(info, key_cols, key_range, changed_since)
        ops = self.ops
        order = ops.join(ops.quote(k) for k in key_cols)
        tail = ops.sql("FROM {t} {w} ORDER BY {k}", t=ops.table(info), w=where, k=order)
        return self._extract(cols, (tail, args), arrow)

    def fetch_keys(self, table: str, key_cols: Sequence[str], keys: Sequence[str]) -> set[str]:
        """``Source.fetch_keys``; a key that cannot be a value of the key columns is simply
        not found."""
        info = self._table(table)
        cols = info.require(key_cols)
        width = len(cols)
        parts = [p for p in (str(k).split("|", width - 1) for k in keys) if len(p) == width]
        return self._found_keys(info, cols, parts) if parts else set()

    def duplicate_values(self, table: str, column: str, limit: int = 20) -> tuple[int, list[str]]:
        """``Source.duplicate_values`` (equal under the column's collation where it has one)."""
        info = self._table(table)
        col = info.column(column)
        if (col.name,) in info.unique:
            return 0, []  # a unique index already guarantees it
        ops = self.ops
        by_text = ops.duplicates_by_text
        query = ops.sql(
            "SELECT count(*) OVER (), {v} FROM (SELECT {g} AS {n} FROM {t} WHERE {c} IS NOT NULL "
            "GROUP BY 1 HAVING count(*) > 1) d ORDER BY 2 LIMIT {P}",
            v=ops.quote("v") if by_text else ops.text(col, "v"),
            g=ops.text(col) if by_text else ops.quote(col.name),
            n=ops.quote("v"),
            t=ops.table(info),
            c=ops.quote(col.name),
        )
        rows = self._queries((query, [int(limit)]))[0]
        return (int(rows[0][0]) if rows else 0), [r[1] for r in rows]

    def _filter(
        self,
        info: TableInfo,
        key_cols: Sequence[str],
        key_range: KeyRange | None,
        changed_since: ChangedSince | None,
    ) -> Clause:
        """WHERE clause and its arguments for a key range and an optional watermark."""
        keys = info.require(key_cols)
        parts: list[Any] = []
        args: list[Any] = []
        for bound, op in key_range.comparisons(key_cols) if key_range else ():
            part, more = self._key_compare(keys, bound, op)
            parts.append(part)
            args.extend(more)
        if changed_since is not None:
            part, more = self._after(info.column(changed_since[0]), changed_since[1])
            parts.append(part)
            args.extend(more)
        return self.ops.where(parts), args

    def _extract_table(self, table: str) -> TableInfo:
        """The table ``extract`` reads (the cached schema; SQLite re-reads it)."""
        return self._table(table)

    # The hooks every SQL source defines.
    def _key_compare(self, keys: list[ColumnInfo], bound: Sequence[Any], op: str) -> Clause:
        raise NotImplementedError

    def _after(self, col: ColumnInfo, value: Any) -> Clause:
        raise NotImplementedError

    def _extract(self, cols: list[ColumnInfo], tail: Clause, arrow: bool) -> pd.DataFrame:
        raise NotImplementedError

    def _found_keys(self, info: TableInfo, cols: list[ColumnInfo], parts: list) -> set[str]:
        raise NotImplementedError
