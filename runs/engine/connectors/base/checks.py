"""The checks role written once for every SQL target (``Checks``, plus ``intended_vs_stored``):
argument checks and result shapes here; the hashing of stored rows is each database's own
(PostgreSQL in SQL, SQLite in Python over the values' text)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .coerced import compare_detail
from .schema import ColumnInfo, TableInfo


class SqlChecks:
    """``Checks`` on a SQL target. Hooks: ``_compared`` and ``_hashed``."""

    _table: Any

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
        return compare_detail(self._compared(info, key, cols, intended), columns)

    def row_hashes(
        self, table: str, key_col: str, keys: Sequence[str], *, columns: Sequence[str] | None = None
    ) -> dict[str, str]:
        """``Checks.row_hashes``: hashing.row_hash over the canonical text of ``columns``
        (default all), what the ledger holds for a row written as meant, per key text found."""
        info = self._table(table)
        key = info.column(key_col)
        cols = info.require(list(columns) if columns is not None else list(info.column_names))
        return self._hashed(info, key, cols, [str(k) for k in keys])

    def _compared(self, info: TableInfo, key: ColumnInfo, cols: list, intended: dict) -> list:
        """(key, found?, intended, stored, intended, stored, ...) per key, canonical text."""
        raise NotImplementedError

    def _hashed(self, info: TableInfo, key: ColumnInfo, cols: list, keys: list) -> dict:
        raise NotImplementedError
