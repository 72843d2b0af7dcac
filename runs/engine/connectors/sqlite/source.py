"""The source role: counts, key ranges, extraction, keys and duplicates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from runs.engine.connectors.base import (
    ChangedSince,
    KeyRange,
    TableInfo,
    chunks,
    ranges_from_bounds,
    text_frame,
)
from runs.engine.errors import SchemaError

from .operations import _CHUNK, _qcols, q
from .plumbing import SqlitePlumbing


class SqliteSource(SqlitePlumbing):
    """The source role: counts, key ranges, extraction, keys and duplicates."""

    def count(self, table: str, *, changed_since: ChangedSince | None = None) -> int:
        """Exact row count of ``table`` (rows past the watermark when given); SchemaError."""
        info = self._table(table)
        where, params = self._where(info, (), None, changed_since)
        with self._tx() as conn:
            return int(
                conn.execute(f"SELECT count(*) FROM {q(info.name)} {where}", params).fetchone()[0]
            )

    def max_value(self, table: str, column: str) -> str | None:
        """Highest value of ``column`` as text (a delta run's high-water mark); SchemaError."""
        info = self._table(table)
        col = info.column(column)
        with self._tx() as conn:
            value = conn.execute(
                f"SELECT CAST(max({q(col.name)}) AS TEXT) FROM {q(info.name)}"
            ).fetchone()[0]
        return value

    def _where(
        self,
        info: TableInfo,
        key_cols: Sequence[str],
        key_range: KeyRange | None,
        changed_since: ChangedSince | None,
    ) -> tuple[str, list[Any]]:
        keys = info.require(key_cols)
        parts, params = [], []
        for bound, op in key_range.comparisons(key_cols) if key_range else ():
            parts.append(f"({_qcols(key_cols)}) {op} ({', '.join('?' for _ in keys)})")
            params.extend(bound)
        if changed_since is not None:
            info.column(changed_since[0])
            parts.append(f"{q(changed_since[0])} > ?")
            params.append(changed_since[1])
        return ("WHERE " + " AND ".join(parts)) if parts else "", params

    def key_ranges(
        self,
        table: str,
        key_cols: Sequence[str],
        batch_size: int,
        *,
        changed_since: ChangedSince | None = None,
    ) -> list[KeyRange]:
        """Keyset batches covering every row once (window query, no OFFSET); last upper open."""
        info = self._table(table)
        where, params = self._where(info, key_cols, None, changed_since)
        keys = _qcols(key_cols)
        with self._tx() as conn:
            bounds = [
                tuple(r)
                for r in conn.execute(
                    f"SELECT {keys} FROM (SELECT {keys}, row_number() OVER (ORDER BY {keys}) "
                    f"AS mp_rn, count(*) OVER () AS mp_n FROM {q(info.name)} {where}) "
                    "WHERE mp_rn % ? = 0 AND mp_rn < mp_n ORDER BY mp_rn",
                    [*params, max(1, int(batch_size))],
                )
            ]
            any_rows = conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM {q(info.name)} {where})", params
            ).fetchone()[0]
        return ranges_from_bounds(bounds, bool(any_rows))

    def extract(
        self,
        table: str,
        columns: Sequence[str],
        key_cols: Sequence[str],
        key_range: KeyRange,
        *,
        changed_since: ChangedSince | None = None,
    ) -> pd.DataFrame:
        """Rows of one key range, ordered by key, as object columns of str/None. The columns
        are checked against the live table (PRAGMA), never the cached schema: SchemaError."""
        info = self.live_table(table)
        if info is None:
            raise SchemaError(f"table {table!r} does not exist")
        info.require(columns)
        where, params = self._where(info, key_cols, key_range, changed_since)
        select = ", ".join(f"CAST({q(c)} AS TEXT)" for c in columns)
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {select} FROM {q(info.name)} {where} ORDER BY {_qcols(key_cols)}", params
            ).fetchall()
        data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
        return text_frame(columns, data)

    def fetch_keys(self, table: str, key_cols: Sequence[str], keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` (source key text, ``|``-joined when composite) exist in ``table``."""
        info = self._table(table)
        info.require(key_cols)
        width = len(key_cols)
        parts = [p for p in (str(k).split("|", width - 1) for k in keys) if len(p) == width]
        text = " || '|' || ".join(f"CAST({q(c)} AS TEXT)" for c in key_cols)
        found: set[str] = set()
        row = "(" + ", ".join("?" for _ in key_cols) + ")"
        with self._tx() as conn:
            for chunk in chunks(parts, _CHUNK // width):
                values = ", ".join(row for _ in chunk)
                args = [v for p in chunk for v in p]
                found.update(
                    r[0]
                    for r in conn.execute(
                        f"SELECT {text} FROM {q(info.name)} WHERE ({_qcols(key_cols)}) IN "
                        f"(VALUES {values})",
                        args,
                    )
                )
        return found

    def duplicate_values(self, table: str, column: str, limit: int = 20) -> tuple[int, list[str]]:
        """(how many distinct non-null values of ``column`` repeat, the first ``limit`` of
        them as text, sorted), counted by the database. Read-only; SchemaError."""
        info = self._table(table)
        name = info.column(column).name
        if (name,) in info.unique:
            return 0, []  # a unique index already guarantees it
        col = q(name)
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT count(*) OVER (), v FROM (SELECT CAST({col} AS TEXT) AS v "
                f"FROM {q(info.name)} WHERE {col} IS NOT NULL GROUP BY 1 HAVING count(*) > 1) "
                "ORDER BY v LIMIT ?",
                (int(limit),),
            ).fetchall()
        return (int(rows[0][0]) if rows else 0), [r[1] for r in rows]
