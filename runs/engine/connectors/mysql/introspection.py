"""Reading information_schema: tables, columns, keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runs.engine.connectors.base import (
    ColumnInfo,
    SchemaInfo,
    TableInfo,
    max_length_of,
)

if TYPE_CHECKING:
    pass
from .plumbing import MysqlPlumbing

_COLUMNS_SQL = """
SELECT c.TABLE_NAME, COALESCE(t.TABLE_ROWS, 0), c.COLUMN_NAME, c.COLUMN_TYPE, c.DATA_TYPE,
       c.IS_NULLABLE, c.COLUMN_DEFAULT, c.EXTRA
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = DATABASE()
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""


_KEYS_SQL = """
SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""


def _table_info(name: str, rows: list[tuple], indexes: dict[str, list[str]]) -> TableInfo:
    pk = tuple(indexes.get("PRIMARY", ()))
    columns = []
    for _, _, col, column_type, data_type, nullable, default, extra in rows:
        extra = (extra or "").lower()
        data_type = str(data_type).lower()
        columns.append(
            ColumnInfo(
                name=col,
                data_type=str(column_type),
                cast_type=data_type,
                max_length=max_length_of(str(column_type))
                if data_type in ("char", "varchar")
                else None,
                nullable=nullable == "YES",
                has_default=(default is not None and default != "NULL")
                or "auto_increment" in extra,
                generated="generated" in extra,
                primary_key=col in pk,
            )
        )
    unique = [tuple(cols) for index, cols in indexes.items() if index != "PRIMARY"]
    return TableInfo(
        name=name,
        columns=tuple(columns),
        row_estimate=int(rows[0][1]),
        primary_key=pk,
        unique=tuple([pk] if pk else []) + tuple(unique),
    )


class MysqlIntrospection(MysqlPlumbing):
    """Reading information_schema: tables, columns, keys."""

    def introspect(self) -> SchemaInfo:
        """Tables and views of the connected database with columns, unique keys, row estimates."""
        col_rows = self._rows(_COLUMNS_SQL)
        keys: dict[str, dict[str, list[str]]] = {}
        for table, index, column in self._rows(_KEYS_SQL):
            keys.setdefault(table, {}).setdefault(index, []).append(column)
        grouped: dict[str, list[tuple]] = {}
        for row in col_rows:
            grouped.setdefault(row[0], []).append(row)
        tables = {
            name: _table_info(name, rows, keys.get(name, {})) for name, rows in grouped.items()
        }
        self._schema = SchemaInfo(tables=tables)
        return self._schema
