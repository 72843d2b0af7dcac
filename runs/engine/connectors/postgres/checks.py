"""The proof: table checksums, row hashes, intended against stored values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg2 import sql

from runs.engine.canonical import (
    pg_canonical_sql,
    pg_intent_sql,
)
from runs.engine.connectors.base import (
    TableChecksum,
    compare_detail,
)
from runs.engine.hashing import fold_digest, row_hash

from .operations import _cast, text_array
from .plumbing import PostgresPlumbing


class PostgresChecks(PostgresPlumbing):
    """The proof: table checksums, row hashes, intended against stored values."""

    def intended_vs_stored(
        self, table: str, key_col: str, intended: dict[str, list[str | None]], columns: list[str]
    ) -> list[dict[str, Any]]:
        """For each target key -> intended values of ``columns``: the columns whose stored
        value differs, canonically (key, column, intended, stored; a missing row is one entry
        with column "*"). Read-only."""
        info = self._table(table)
        key = info.column(key_col)
        cols = info.require(columns)
        if not intended:
            return []
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
        with self._tx() as cur:
            cur.execute(query, [keys, *arrays])
            rows = cur.fetchall()
        return compare_detail(rows, columns)

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

    def row_hashes(
        self, table: str, key_col: str, keys: Sequence[str], *, columns: Sequence[str] | None = None
    ) -> dict[str, str]:
        """Row hash (hashing.row_hash over the canonical text of ``columns``, default all: what
        the ledger holds for a row written as meant) per key text found. Read-only."""
        info = self._table(table)
        key = info.column(key_col)
        names = list(columns) if columns is not None else list(info.column_names)
        cols = info.require(names)
        query = self._rows_by_key_sql(
            info,
            key,
            sql.SQL(", ").join(pg_canonical_sql(sql.Identifier("t", c.name), c) for c in cols),
        )
        with self._tx() as cur:
            cur.execute(query, (text_array(keys),))
            return {r[0]: row_hash(r[1:]) for r in cur.fetchall()}
