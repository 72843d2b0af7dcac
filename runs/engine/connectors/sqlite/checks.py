"""The proof: table checksums, row hashes, intended against stored values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runs.engine.canonical import canonical_row
from runs.engine.connectors.base import (
    TableChecksum,
    chunks,
    compare_detail,
)
from runs.engine.hashing import fold_digest, row_hash, text_digest64

from .operations import _CHUNK, q
from .plumbing import SqlitePlumbing
from .target import _read_back


class SqliteChecks(SqlitePlumbing):
    """The proof: table checksums, row hashes, intended against stored values."""

    def table_checksum(self, table: str, key_cols: Sequence[str]) -> TableChecksum:
        """Row count + sum of a 64-bit md5 slice of every row's quote()d values."""
        info = self._table(table)
        info.require(key_cols)
        text = " || char(31) || ".join(f"quote({q(c)})" for c in info.column_names)
        total = rows = 0
        with self._tx() as conn:
            for (row_text,) in conn.execute(f"SELECT {text} FROM {q(info.name)}"):
                total += text_digest64(row_text)
                rows += 1
        return TableChecksum(rows=rows, digest=fold_digest(total))

    def intended_vs_stored(
        self, table: str, key_col: str, intended: dict[str, list[str | None]], columns: list[str]
    ) -> list[dict[str, Any]]:
        """For each target key -> intended values of ``columns``: the columns whose stored
        value differs, canonically (key, column, intended, stored; a missing row is one entry
        with column "*"). Read-only."""
        info = self._table(table)
        tk = info.column(key_col)
        cols = info.require(columns)
        with self._tx() as conn:
            stored = _read_back(conn, info, cols, tk, list(intended))
        rows = []
        for key, values in intended.items():
            have = stored.get(str(key))
            want = canonical_row(cols, values)
            got = canonical_row(cols, have) if have is not None else [None] * len(cols)
            rows.append(
                (key, have is not None, *(v for p in zip(want, got, strict=True) for v in p))
            )
        return compare_detail(rows, columns)

    def row_hashes(
        self, table: str, key_col: str, keys: Sequence[str], *, columns: Sequence[str] | None = None
    ) -> dict[str, str]:
        """Row hash (hashing.row_hash over the canonical text of ``columns``, default all:
        what the ledger holds for a row written as meant) per key text found. Read-only."""
        info = self._table(table)
        info.column(key_col)
        names = list(columns) if columns is not None else list(info.column_names)
        cols = info.require(names)
        select = ", ".join(f"CAST({q(c)} AS TEXT)" for c in [key_col, *names])
        out: dict[str, str] = {}
        with self._tx() as conn:
            for chunk in chunks([str(k) for k in keys], _CHUNK):
                marks = ", ".join("?" for _ in chunk)
                for r in conn.execute(
                    f"SELECT {select} FROM {q(info.name)} WHERE {q(key_col)} IN ({marks})",
                    list(chunk),
                ):
                    out[r[0]] = row_hash(canonical_row(cols, r[1:]))
        return out
