"""The source role (``base.source.SqlSource``) on PostgreSQL: key bounds as cast literals,
extraction by COPY out, keys looked up through text arrays."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg2 import sql

from runs.engine.connectors.base import ColumnInfo, TableInfo
from runs.engine.connectors.base.dialect import Clause
from runs.engine.connectors.base.source import SqlSource

from .operations import _cast, _cols, parse_copy_csv, text_array
from .plumbing import PostgresPlumbing

if TYPE_CHECKING:  # pandas is loaded where a frame is made, not by importing this
    import pandas as pd


class PostgresSource(SqlSource, PostgresPlumbing):
    """The source role: values bound as literals cast to the column's type, COPY out."""

    def _where(self, info: TableInfo, *args: Any) -> sql.Composable:
        """``_filter``'s WHERE clause alone (its values are literals), for SQL composed
        elsewhere (unchanged.py); ``args``: key columns, key range, watermark."""
        return self._filter(info, *args)[0]

    def _key_compare(self, keys: list[ColumnInfo], bound: Sequence[Any], op: str) -> Clause:
        vals = sql.SQL(", ").join(
            _cast(sql.Literal(None if v is None else str(v)), k)
            for v, k in zip(bound, keys, strict=True)
        )
        row = _cols([k.name for k in keys])
        return sql.SQL("({}) {} ({})").format(row, sql.SQL(op), vals), []

    def _after(self, col: ColumnInfo, value: Any) -> Clause:
        cast = _cast(sql.Literal(str(value)), col)
        return sql.SQL("{} > {}").format(sql.Identifier(col.name), cast), []

    def _extract(self, cols: list[ColumnInfo], tail: Clause, arrow: bool) -> pd.DataFrame:
        """COPY out as CSV, parsed by pyarrow."""
        names = [c.name for c in cols]
        query = sql.SQL("COPY (SELECT {} {}) TO STDOUT WITH (FORMAT csv)").format(
            _cols(names), tail[0]
        )
        buf = io.BytesIO()
        with self._tx() as cur:
            cur.copy_expert(query, buf)
        return parse_copy_csv(buf.getvalue(), names, arrow=arrow)

    def _found_keys(self, info: TableInfo, cols: list[ColumnInfo], parts: list) -> set[str]:
        arrays = [[p[i] for p in parts] for i in range(len(cols))]
        names = [sql.Identifier(f"a{i}") for i in range(len(cols))]
        query = sql.SQL(
            "SELECT concat_ws('|', {tk}) FROM {t} WHERE ({k}) IN "
            "(SELECT {casts} FROM unnest({arrs}) AS u({names}))"
        ).format(
            tk=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in cols),
            t=self.table_ident(info),
            k=_cols([c.name for c in cols]),
            casts=sql.SQL(", ").join(_cast(n, c) for n, c in zip(names, cols, strict=True)),
            arrs=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in cols),
            names=sql.SQL(", ").join(names),
        )
        return {r[0] for r in self._queries((query, [text_array(a) for a in arrays]))[0]}
