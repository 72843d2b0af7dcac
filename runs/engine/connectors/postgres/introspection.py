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


# Server encodings (PostgreSQL 15, "Character Set Support") -> the Python codec that encodes
# exactly the characters the server's conversion from UTF8 takes (tests/engine/
# test_postgres_encoding.py compares them with the live server's convert_to). Not here:
# UTF8 (holds every character); SQL_ASCII (no conversion at all: the server stores the UTF-8
# bytes as they come and gives them back alike, so nothing is refused or changed);
# MULE_INTERNAL and EUC_TW (no Python codec); EUC_JP, EUC_JIS_2004 and EUC_KR (Python's
# codecs take other characters than PostgreSQL 15's conversion: 8 and 173, 3163 and 37, 8822
# and 1 of the BMP one side only). Those are left to the server: a character it cannot hold
# is its error, for the whole batch, as before. BIG5, GBK, SJIS & co. are client-only
# encodings, never a database's.
PG_CODECS = {
    "LATIN1": "latin_1",
    "LATIN2": "iso8859_2",
    "LATIN3": "iso8859_3",
    "LATIN4": "iso8859_4",
    "LATIN5": "iso8859_9",
    "LATIN6": "iso8859_10",
    "LATIN7": "iso8859_13",
    "LATIN8": "iso8859_14",
    "LATIN9": "iso8859_15",
    "LATIN10": "iso8859_16",
    **{f"ISO_8859_{n}": f"iso8859_{n}" for n in (5, 6, 7, 8)},
    **{f"WIN{n}": f"cp{n}" for n in (866, 874, *range(1250, 1259))},
    "KOI8R": "koi8_r",
    "KOI8U": "koi8_u",
    "EUC_CN": "gb2312",
}


def _table_info(
    nsp: str,
    rel: str,
    rows: list[tuple],
    keys: list[tuple[bool, tuple[str, ...]]],
    current: str,
    encoding: str,
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
        encoding=encoding,
        codec=PG_CODECS.get(encoding),
    )


class PostgresIntrospection(PostgresPlumbing):
    """Reading the catalog: tables, columns (declared types with their typmods), keys."""

    def introspect(self) -> SchemaInfo:
        """Tables of every user schema (bare names in current_schema, else ``schema.table``)."""
        with self._tx() as cur:
            # server_encoding: the database's own, fixed when it was created
            cur.execute("SELECT current_schema(), current_setting('server_encoding')")
            current, encoding = cur.fetchone()
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
            info = _table_info(nsp, rel, rows, keys.get((nsp, rel), []), current, encoding)
            tables[info.name] = info
        self._schema = SchemaInfo(tables=tables)
        return self._schema

    def live_table(self, name: str) -> TableInfo | None:
        """One table as it is now (two catalog queries for that table alone; the cache is
        refreshed); None when it does not exist. Read-only."""
        one = " AND n.nspname = %s AND c.relname = %s "
        with self._tx() as cur:
            # server_encoding: the database's own, fixed when it was created
            cur.execute("SELECT current_schema(), current_setting('server_encoding')")
            current, encoding = cur.fetchone()
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
                info = _table_info(nsp, rel, rows, keys, current, encoding)
        if self._schema is not None:
            tables = {k: v for k, v in self._schema.tables.items() if k != name}
            self._schema = SchemaInfo(tables=tables | ({name: info} if info else {}))
        return info

    @staticmethod
    def table_ident(info: TableInfo) -> sql.Composable:
        """The table's schema-qualified identifier (``schema.table``, quoted)."""
        return OPS.table(info)
