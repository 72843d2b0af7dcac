"""The proof (``base.checks.SqlChecks``) on PostgreSQL: checksums, row hashes and intended
against stored values, computed by the server."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg2 import sql

from runs.engine.canonical import (
    pg_canonical_sql,
    pg_intent_sql,
)
from runs.engine.connectors.base import ColumnInfo, TableChecksum, TableInfo
from runs.engine.connectors.base.checks import SqlChecks
from runs.engine.hashing import fold_digest, row_hash

from .operations import _cast, text_array
from .readback import PostgresReadBack


class PostgresChecks(SqlChecks, PostgresReadBack):
    """The proof: table checksums, row hashes, intended against stored values."""

    def _compared(self, info: TableInfo, key: ColumnInfo, cols: list, intended: dict) -> list:
        keys = list(intended)
        names = [sql.Identifier(f"c{i}") for i in range(len(cols))]
        pairs = [
            sql.SQL("{}, {}").format(
                pg_intent_sql(sql.Identifier("u", f"c{i}"), c),
                pg_canonical_sql(sql.Identifier("t", c.name), c),
            )
            for i, c in enumerate(cols)
        ]
        query = sql.SQL(
            "SELECT u.k, t.{k} IS NOT NULL, {pairs} FROM unnest(%s::text[], {arrays}) "
            "AS u(k, {names}) LEFT JOIN {t} AS t ON t.{k} = {cast}"
        ).format(
            k=sql.Identifier(key.name),
            pairs=sql.SQL(", ").join(pairs),
            arrays=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in cols),
            names=sql.SQL(", ").join(names),
            t=self.table_ident(info),
            cast=_cast(sql.SQL("u.k"), key),
        )
        arrays = [[intended[k][i] for k in keys] for i in range(len(cols))]
        return self._queries((query, [keys, *arrays]))[0]

    def table_checksum(self, table: str, key_cols: Sequence[str]) -> TableChecksum:
        """Row count + sum of a 64-bit md5 slice of every row's text, computed in SQL."""
        info = self._table(table)
        info.require(key_cols)
        with self._tx() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))"
                    "::bit(64)::bigint), 0)::text FROM {} AS t"
                ).format(self.table_ident(info))
            )
            rows, total = cur.fetchone()
        return TableChecksum(rows=int(rows), digest=fold_digest(int(total)))

    def _hashed(self, info: TableInfo, key: ColumnInfo, cols: list, keys: list) -> dict:
        query = self._rows_by_key_sql(
            info,
            key,
            sql.SQL(", ").join(pg_canonical_sql(sql.Identifier("t", c.name), c) for c in cols),
        )
        with self._tx() as cur:
            cur.execute(query, (text_array(keys),))
            return {r[0]: row_hash(r[1:]) for r in cur.fetchall()}
