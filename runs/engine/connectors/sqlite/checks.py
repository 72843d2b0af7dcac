"""The proof (``base.checks.SqlChecks``) on SQLite: checksums, row hashes and intended against
stored values, hashed in Python over the values' text."""

from __future__ import annotations

from collections.abc import Sequence

from runs.engine.canonical import canonical_row
from runs.engine.connectors.base import ColumnInfo, TableChecksum, TableInfo, chunks
from runs.engine.connectors.base.checks import SqlChecks
from runs.engine.hashing import fold_digest, row_hash, text_digest64

from .operations import _CHUNK, q
from .plumbing import SqlitePlumbing
from .target import _read_back


class SqliteChecks(SqlChecks, SqlitePlumbing):
    """The proof: table checksums, row hashes, intended against stored values."""

    def table_checksum(
        self, table: str, key_cols: Sequence[str], *, like: str | None = None
    ) -> TableChecksum:
        """Row count + sum of a 64-bit md5 slice of every row's quote()d values (one form:
        ``like`` is not needed). Read-only."""
        info = self._table(table)
        info.require(key_cols)
        text = " || char(31) || ".join(f"quote({q(c)})" for c in info.column_names)
        total = rows = 0
        with self._tx() as conn:
            for (row_text,) in conn.execute(f"SELECT {text} FROM {q(info.name)}"):
                total += text_digest64(row_text)
                rows += 1
        return TableChecksum(rows=rows, digest=fold_digest(total))

    def _compared(self, info: TableInfo, tk: ColumnInfo, cols: list, intended: dict) -> list:
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
        return rows

    def _hashed(self, info: TableInfo, key: ColumnInfo, cols: list, keys: list) -> dict:
        """Hashed in Python over the values' text (SQLite has no sha256)."""
        select = ", ".join(f"CAST({q(c.name)} AS TEXT)" for c in [key, *cols])
        out: dict[str, str] = {}
        with self._tx() as conn:
            for chunk in chunks(keys, _CHUNK):
                marks = ", ".join("?" for _ in chunk)
                for r in conn.execute(
                    f"SELECT {select} FROM {q(info.name)} WHERE {q(key.name)} IN ({marks})",
                    list(chunk),
                ):
                    out[r[0]] = row_hash(canonical_row(cols, r[1:]))
        return out
