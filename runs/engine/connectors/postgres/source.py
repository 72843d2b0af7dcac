"""The source role: counts, key ranges, extraction (COPY out), keys and duplicates."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd
from psycopg2 import sql

from runs.engine.connectors.base import (
    ChangedSince,
    KeyRange,
    TableInfo,
    ranges_from_bounds,
)

from .operations import _cast, _cols, parse_copy_csv, text_array
from .plumbing import PostgresPlumbing


class PostgresSource(PostgresPlumbing):
    """The source role: counts, key ranges, extraction (COPY out), keys and duplicates."""

    def count(
        self,
        table: str,
        *,
        changed_since: ChangedSince | None = None,
        key_cols: Sequence[str] = (),
        key_range: KeyRange | None = None,
    ) -> int:
        """Exact row count of ``table`` (rows past the watermark, in the key range, when
        given); SchemaError."""
        info = self._table(table)
        where = self._where(info, key_cols, key_range, changed_since)
        with self._tx() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {} {}").format(self.table_ident(info), where))
            return int(cur.fetchone()[0])

    def max_value(self, table: str, column: str) -> str | None:
        """Highest value of ``column`` as text (a delta run's high-water mark); SchemaError."""
        info = self._table(table)
        col = info.column(column)
        with self._tx() as cur:
            cur.execute(
                sql.SQL("SELECT max({})::text FROM {}").format(
                    sql.Identifier(col.name), self.table_ident(info)
                )
            )
            return cur.fetchone()[0]

    def _where(
        self,
        info: TableInfo,
        key_cols: Sequence[str],
        key_range: KeyRange | None,
        changed_since: ChangedSince | None,
    ) -> sql.Composable:
        """WHERE clause (values bound as literals) for a key range and an optional watermark."""
        keys = info.require(key_cols)
        parts: list[sql.Composable] = []
        row = sql.SQL("({})").format(_cols(key_cols))
        for bound, op in key_range.comparisons(key_cols) if key_range else ():
            vals = sql.SQL(", ").join(
                _cast(sql.Literal(None if v is None else str(v)), k)
                for v, k in zip(bound, keys, strict=True)
            )
            parts.append(sql.SQL("{} {} ({})").format(row, sql.SQL(op), vals))
        if changed_since is not None:
            wm = info.column(changed_since[0])
            parts.append(
                sql.SQL("{} > {}").format(
                    sql.Identifier(wm.name), _cast(sql.Literal(str(changed_since[1])), wm)
                )
            )
        if not parts:
            return sql.SQL("")
        return sql.SQL("WHERE ") + sql.SQL(" AND ").join(parts)

    def key_ranges(
        self,
        table: str,
        key_cols: Sequence[str],
        batch_size: int,
        *,
        changed_since: ChangedSince | None = None,
    ) -> list[KeyRange]:
        """Keyset batches covering every row once (window query, no OFFSET); last upper open."""
        info = self._table(table)
        where = self._where(info, key_cols, None, changed_since)
        text_keys = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(k)) for k in key_cols
        )
        query = sql.SQL(
            "SELECT {tk} FROM (SELECT {k}, row_number() OVER (ORDER BY {k}) AS mp_rn, "
            "count(*) OVER () AS mp_n FROM {t} {w}) s "
            "WHERE mp_rn % {n} = 0 AND mp_rn < mp_n ORDER BY mp_rn"
        ).format(
            tk=text_keys,
            k=_cols(key_cols),
            t=self.table_ident(info),
            w=where,
            n=sql.Literal(max(1, int(batch_size))),
        )
        with self._tx() as cur:
            cur.execute(query)
            bounds = [tuple(r) for r in cur.fetchall()]
            cur.execute(
                sql.SQL("SELECT EXISTS (SELECT 1 FROM {t} {w})").format(
                    t=self.table_ident(info), w=where
                )
            )
            any_rows = cur.fetchone()[0]
        return ranges_from_bounds(bounds, any_rows)

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
        """Rows of one key range, ordered by key, as object columns of str/None (COPY + pyarrow;
        ``arrow``: Arrow-backed string columns, see extract_text)."""
        info = self._table(table)
        info.require(columns)
        query = sql.SQL(
            "COPY (SELECT {c} FROM {t} {w} ORDER BY {k}) TO STDOUT WITH (FORMAT csv)"
        ).format(
            c=_cols(columns),
            t=self.table_ident(info),
            k=_cols(key_cols),
            w=self._where(info, key_cols, key_range, changed_since),
        )
        buf = io.BytesIO()
        with self._tx() as cur:
            cur.copy_expert(query, buf)
        return parse_copy_csv(buf.getvalue(), columns, arrow=arrow)

    def fetch_keys(self, table: str, key_cols: Sequence[str], keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` (source key text, ``|``-joined when composite) exist in ``table``."""
        info = self._table(table)
        cols = info.require(key_cols)
        if not keys:
            return set()
        parts = [str(k).split("|", len(cols) - 1) for k in keys]
        parts = [p for p in parts if len(p) == len(cols)]
        arrays = [[p[i] for p in parts] for i in range(len(cols))]
        names = [sql.Identifier(f"a{i}") for i in range(len(cols))]
        query = sql.SQL(
            "SELECT concat_ws('|', {tk}) FROM {t} WHERE ({k}) IN "
            "(SELECT {casts} FROM unnest({arrs}) AS u({names}))"
        ).format(
            tk=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in key_cols),
            t=self.table_ident(info),
            k=_cols(key_cols),
            casts=sql.SQL(", ").join(_cast(n, c) for n, c in zip(names, cols, strict=True)),
            arrs=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in cols),
            names=sql.SQL(", ").join(names),
        )
        with self._tx() as cur:
            cur.execute(query, [text_array(a) for a in arrays])
            return {r[0] for r in cur.fetchall()}

    def duplicate_values(self, table: str, column: str, limit: int = 20) -> tuple[int, list[str]]:
        """(how many distinct non-null values of ``column`` repeat, the first ``limit`` of
        them as text, sorted), counted by the database. Read-only; SchemaError."""
        info = self._table(table)
        name = info.column(column).name
        if (name,) in info.unique:
            return 0, []  # a unique index already guarantees it
        col = sql.Identifier(name)
        with self._tx() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT count(*) OVER (), v::text FROM (SELECT {c} AS v FROM {t} "
                    "WHERE {c} IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d ORDER BY 2 LIMIT %s"
                ).format(c=col, t=self.table_ident(info)),
                (int(limit),),
            )
            rows = cur.fetchall()
        return (int(rows[0][0]) if rows else 0), [r[1] for r in rows]
