"""Reading the schema: tables, columns, keys (PRAGMA table_info / index lists)."""

from __future__ import annotations

import sqlite3

from runs.engine.connectors.base import (
    ColumnInfo,
    SchemaInfo,
    TableInfo,
    max_length_of,
)

from .operations import q
from .plumbing import SqlitePlumbing


def _table_info(conn: sqlite3.Connection, name: str, *, count: bool = True) -> TableInfo:
    cols = conn.execute(
        'SELECT name, type, "notnull", dflt_value, pk, hidden '
        "FROM pragma_table_xinfo(?) ORDER BY cid",
        (name,),
    ).fetchall()
    pk = tuple(c[0] for c in sorted((c for c in cols if c[4]), key=lambda c: c[4]))
    rowid_alias = len(pk) == 1 and any(c[0] == pk[0] and c[1].upper() == "INTEGER" for c in cols)
    columns = tuple(
        ColumnInfo(
            name=c[0],
            data_type=c[1] or "",
            cast_type=c[1] or "",
            base_type=(c[1] or "").split("(")[0].strip(),
            max_length=max_length_of(c[1] or ""),
            nullable=not c[2] and not (rowid_alias and c[0] == pk[0]),
            primary_key=c[0] in pk,
            has_default=c[3] is not None or (rowid_alias and c[0] == pk[0]),
            generated=c[5] in (2, 3),
        )
        for c in cols
        if c[5] != 1
    )
    unique = [pk] if pk else []
    for idx_name, partial in conn.execute(
        'SELECT name, partial FROM pragma_index_list(?) WHERE "unique"', (name,)
    ).fetchall():
        idx_cols = tuple(
            r[0]
            for r in conn.execute(
                "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (idx_name,)
            )
        )
        if not partial and None not in idx_cols and idx_cols not in unique:
            unique.append(idx_cols)
    rows = conn.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0] if count else 0
    return TableInfo(
        name=name, columns=columns, row_estimate=int(rows), primary_key=pk, unique=tuple(unique)
    )


class SqliteIntrospection(SqlitePlumbing):
    """Reading the schema: tables, columns, keys (PRAGMA table_info / index lists)."""

    def introspect(self) -> SchemaInfo:
        """Tables and views (except sqlite_* and mp_ledger_*) with columns, keys, row counts."""
        with self._tx() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                    "AND name NOT LIKE 'mp\\_ledger\\_%' ESCAPE '\\' ORDER BY name"
                )
            ]
            tables = {name: _table_info(conn, name) for name in names}
        self._schema = SchemaInfo(tables=tables)
        return self._schema

    def live_table(self, name: str) -> TableInfo | None:
        """The table as it is now (PRAGMA table_xinfo, no row count; the cache is refreshed);
        None when it does not exist. Read-only."""
        with self._tx() as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)
            ).fetchone()
            info = _table_info(conn, name, count=False) if exists else None
        if self._schema is not None:
            tables = {k: v for k, v in self._schema.tables.items() if k != name}
            self._schema = SchemaInfo(tables=tables | ({name: info} if info else {}))
        return info
