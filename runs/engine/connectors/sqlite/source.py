"""The source role (``base.source.SqlSource``) on SQLite: bound values, text by CAST, the
table re-read before extracting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runs.engine.connectors.base import ColumnInfo, TableInfo, chunks, text_frame
from runs.engine.connectors.base.dialect import Clause
from runs.engine.connectors.base.source import SqlSource
from runs.engine.errors import SchemaError

from .operations import _CHUNK, _qcols, q
from .plumbing import SqlitePlumbing

if TYPE_CHECKING:  # pandas is loaded where a frame is made, not by importing this
    import pandas as pd


class SqliteSource(SqlSource, SqlitePlumbing):
    """The source role: bound values compared as stored; object columns of str/None."""

    def _key_compare(self, keys: list[ColumnInfo], bound: Sequence[Any], op: str) -> Clause:
        marks = ", ".join("?" for _ in keys)
        return f"({_qcols([k.name for k in keys])}) {op} ({marks})", list(bound)

    def _after(self, col: ColumnInfo, value: Any) -> Clause:
        return f"{q(col.name)} > ?", [value]

    def _extract_table(self, table: str) -> TableInfo:
        """The live table (PRAGMA), never the cached schema: SchemaError when it is gone."""
        info = self.live_table(table)
        if info is None:
            raise SchemaError(f"table {table!r} does not exist")
        return info

    def _extract(self, cols: list[ColumnInfo], tail: Clause, arrow: bool) -> pd.DataFrame:
        select = ", ".join(f"CAST({q(c.name)} AS TEXT)" for c in cols)
        rows = self._queries((f"SELECT {select} {tail[0]}", tail[1]))[0]
        return text_frame(
            [c.name for c in cols], {c.name: [r[i] for r in rows] for i, c in enumerate(cols)}
        )

    def _found_keys(self, info: TableInfo, cols: list[ColumnInfo], parts: list) -> set[str]:
        width = len(cols)
        names = [c.name for c in cols]
        text = " || '|' || ".join(f"CAST({q(n)} AS TEXT)" for n in names)
        row = "(" + ", ".join("?" for _ in cols) + ")"
        found: set[str] = set()
        with self._tx() as conn:
            for chunk in chunks(parts, _CHUNK // width):
                values = ", ".join(row for _ in chunk)
                args = [v for p in chunk for v in p]
                found.update(
                    r[0]
                    for r in conn.execute(
                        f"SELECT {text} FROM {q(info.name)} WHERE ({_qcols(names)}) IN "
                        f"(VALUES {values})",
                        args,
                    )
                )
        return found
