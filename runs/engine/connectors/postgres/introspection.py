"""Reading the catalog: tables, columns (declared types with their typmods), keys."""

from __future__ import annotations

from psycopg2 import sql

from runs.engine.connectors.base import (
    ColumnInfo,
    SchemaInfo,
    TableInfo,
)

from .operations import OPS
from .plumbing import PostgresPlumbing

_SKIP_SCHEMAS = ("pg_catalog", "information_schema", "mp_ledger", "pg_toast")


_COLUMNS_SQL = """
SELECT n.nspname, c.relname, greatest(c.reltuples, 0)::bigint, a.attname,
       format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL),
       CASE WHEN a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype) AND a.atttypmod > 4
            THEN a.atttypmod - 4 END,
       NOT a.attnotnull, a.atthasdef OR a.attidentity <> '',
       a.attgenerated <> '' OR a.attidentity = 'a'
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_temp%%'
ORDER BY n.nspname, c.relname, a.attnum
"""


_KEYS_SQL = """
SELECT n.nspname, c.relname, i.indisprimary,
       array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE i.indisunique AND i.indpred IS NULL AND NOT (0 = ANY(i.indkey::int2[]))
  AND n.nspname <> ALL(%s)
GROUP BY n.nspname, c.relname, i.indexrelid, i.indisprimary
"""


def _table_info(
    nsp: str, rel: str, rows: list[tuple], keys: list[tuple[bool, tuple[str, ...]]], current: str
) -> TableInfo:
    pk = next((cols for primary, cols in keys if primary), ())
    columns = tuple(
        ColumnInfo(
            name=r[3],
            data_type=r[4],
            cast_type=r[4],
            base_type=r[5],
            max_length=r[6],
            nullable=r[7],
            has_default=r[8],
            generated=r[9],
            primary_key=r[3] in pk,
        )
        for r in rows
    )
    return TableInfo(
        name=rel if nsp == current else f"{nsp}.{rel}",
        columns=columns,
        row_estimate=int(rows[0][2]),
        primary_key=pk,
        unique=tuple(cols for _, cols in keys),
        schema=nsp,
    )


class PostgresIntrospection(PostgresPlumbing):
    """Reading the catalog: tables, columns (declared types with their typmods), keys."""

    def introspect(self) -> SchemaInfo:
        """Tables of every user schema (bare names in current_schema, else ``schema.table``)."""
        with self._tx() as cur:
            cur.execute("SELECT current_schema()")
            current = cur.fetchone()[0]
            cur.execute(_COLUMNS_SQL, (list(_SKIP_SCHEMAS),))
            col_rows = cur.fetchall()
            cur.execute(_KEYS_SQL, (list(_SKIP_SCHEMAS),))
            key_rows = cur.fetchall()
        keys: dict[tuple[str, str], list[tuple[bool, tuple[str, ...]]]] = {}
        for nsp, rel, primary, cols in key_rows:
            keys.setdefault((nsp, rel), []).append((primary, tuple(cols)))
        grouped: dict[tuple[str, str], list[tuple]] = {}
        for row in col_rows:
            grouped.setdefault((row[0], row[1]), []).append(row)
        tables = {}
        for (nsp, rel), rows in grouped.items():
            info = _table_info(nsp, rel, rows, keys.get((nsp, rel), []), current)
            tables[info.name] = info
        self._schema = SchemaInfo(tables=tables)
        return self._schema

    def live_table(self, name: str) -> TableInfo | None:
        """One table as it is now (two catalog queries for that table alone; the cache is
        refreshed); None when it does not exist. Read-only."""
        one = " AND n.nspname = %s AND c.relname = %s "
        with self._tx() as cur:
            cur.execute("SELECT current_schema()")
            current = cur.fetchone()[0]
            candidates = [(current, name)]
            if "." in name:
                candidates.insert(0, tuple(name.split(".", 1)))
            for nsp, rel in candidates:
                cur.execute(
                    _COLUMNS_SQL.replace("ORDER BY", one + "ORDER BY"),
                    (list(_SKIP_SCHEMAS), nsp, rel),
                )
                rows = cur.fetchall()
                if rows:
                    break
            else:
                info = None
            if rows:
                cur.execute(
                    _KEYS_SQL.replace("GROUP BY", one + "GROUP BY"), (list(_SKIP_SCHEMAS), nsp, rel)
                )
                keys = [(primary, tuple(cols)) for _, _, primary, cols in cur.fetchall()]
                info = _table_info(nsp, rel, rows, keys, current)
        if self._schema is not None:
            tables = {k: v for k, v in self._schema.tables.items() if k != name}
            self._schema = SchemaInfo(tables=tables | ({name: info} if info else {}))
        return info

    @staticmethod
    def table_ident(info: TableInfo) -> sql.Composable:
        """The table's schema-qualified identifier (``schema.table``, quoted)."""
        return OPS.table(info)
