"""The proof (``base.checks.SqlChecks``) on PostgreSQL: checksums, row hashes and intended
against stored values, computed by the server."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg2 import sql

from runs.engine.canonical import (
    pg_canonical_sql,
    pg_intent_sql,
    pg_stored_hash_sql,
)
from runs.engine.connectors.base import ColumnInfo, TableChecksum, TableInfo
from runs.engine.connectors.base.checks import SqlChecks
from runs.engine.hashing import fold_digest

from .operations import _cast, text_array
from .readback import PostgresReadBack

# The table checksum's form: the sum of hashtextextended (PostgreSQL's 64-bit hash of text,
# seed 0; stable across versions, hash partitioning depends on it) of each row's text.
_CHECKSUM_FORM = "h1:"


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

    def table_checksum(
        self, table: str, key_cols: Sequence[str], *, like: str | None = None
    ) -> TableChecksum:
        """Row count + sum (modulo 2^64) of a 64-bit hash of every row's text, computed in SQL:
        hashtextextended (form "h1:"), or, when ``like`` is a digest of the earlier form (no
        "h1:"), md5's first 64 bits as then. Read-only."""
        info = self._table(table)
        info.require(key_cols)
        if like is not None and not like.startswith(_CHECKSUM_FORM):
            row = sql.SQL("('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint")
        else:  # ~0.45x the server time of md5's hex cut and cast through bit(64)
            row = sql.SQL("hashtextextended(t::text, 0)")
        with self._tx() as cur:
            cur.execute(
                sql.SQL("SELECT count(*), coalesce(sum({}), 0)::text FROM {} AS t").format(
                    row, self.table_ident(info)
                )
            )
            rows, total = cur.fetchone()
        digest = fold_digest(int(total))
        if like is None or like.startswith(_CHECKSUM_FORM):
            digest = _CHECKSUM_FORM + digest
        return TableChecksum(rows=int(rows), digest=digest)

    def _hashed(self, info: TableInfo, key: ColumnInfo, cols: list, keys: list) -> dict:
        """(key text -> row hash) computed by the server (``pg_stored_hash_sql``): only the
        hash travels; at 8.3 M rows a Python tuple of every column's text and row_hash per row
        cost more than the server's read (issue 20's reconciliation)."""
        query = self._rows_by_key_sql(info, key, pg_stored_hash_sql("t", cols))
        with self._tx() as cur:
            cur.execute(query, (text_array(keys),))
            return dict(cur.fetchall())
