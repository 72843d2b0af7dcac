"""The source role: counts, key ranges, extraction, keys and duplicates."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runs.engine.connectors.base import (
    ChangedSince,
    KeyRange,
    TableInfo,
    arrow_frame,
    chunks,
    ranges_from_bounds,
    text_frame,
)
from runs.engine.errors import EngineError

if TYPE_CHECKING:
    import pandas as pd
from .operations import _CHUNK, _bound, _keyset, _qcols, q, text_expr
from .plumbing import MysqlPlumbing


class MysqlSource(MysqlPlumbing):
    """The source role: counts, key ranges, extraction, keys and duplicates."""

    def _where(
        self,
        info: TableInfo,
        key_cols: Sequence[str],
        key_range: KeyRange | None,
        changed_since: ChangedSince | None,
    ) -> tuple[str, list[Any]]:
        keys = info.require(key_cols)
        parts: list[str] = []
        params: list[Any] = []
        for bound, op in key_range.comparisons(key_cols) if key_range else ():
            try:
                clause, args = _keyset(keys, bound, op)
            except ValueError as exc:
                raise EngineError(f"key range bound {bound!r} does not fit the key: {exc}") from exc
            parts.append(clause)
            params.extend(args)
        if changed_since is not None:
            wm = info.column(changed_since[0])
            try:
                expr, arg = _bound(wm, changed_since[1])
            except ValueError as exc:
                raise EngineError(
                    f"watermark {changed_since[1]!r} does not fit column {wm.name!r}: {exc}"
                ) from exc
            parts.append(f"{q(wm.name)} > {expr}")
            params.append(arg)
        return ("WHERE " + " AND ".join(parts)) if parts else "", params

    def count(self, table: str, *, changed_since: ChangedSince | None = None) -> int:
        """Exact row count of ``table`` (rows past the watermark when given); SchemaError."""
        info = self._table(table)
        where, params = self._where(info, (), None, changed_since)
        return int(self._rows(f"SELECT COUNT(*) FROM {q(info.name)} {where}", params)[0][0])

    def max_value(self, table: str, column: str) -> str | None:
        """Highest value of ``column`` as text (a delta run's high-water mark); SchemaError."""
        info = self._table(table)
        col = info.column(column)
        inner = f"SELECT MAX({q(col.name)}) AS {q(col.name)} FROM {q(info.name)}"
        return self._rows(f"SELECT {text_expr(col)} FROM ({inner}) m")[0][0]

    def key_ranges(
        self,
        table: str,
        key_cols: Sequence[str],
        batch_size: int,
        *,
        changed_since: ChangedSince | None = None,
    ) -> list[KeyRange]:
        """Keyset batches covering every row once (ROW_NUMBER, no OFFSET); last upper open.
        Read-only; EngineError on a server without window functions."""
        info = self._table(table)
        keys = info.require(key_cols)
        where, params = self._where(info, key_cols, None, changed_since)
        text_keys = ", ".join(text_expr(k) for k in keys)
        try:
            bounds = [
                tuple(r)
                for r in self._rows(
                    f"SELECT {text_keys} FROM (SELECT {_qcols(key_cols)}, ROW_NUMBER() OVER "
                    f"(ORDER BY {_qcols(key_cols)}) AS mp_rn, COUNT(*) OVER () AS mp_n "
                    f"FROM {q(info.name)} {where}) s "
                    "WHERE MOD(mp_rn, %s) = 0 AND mp_rn < mp_n ORDER BY mp_rn",
                    [*params, max(1, int(batch_size))],
                )
            ]
        except EngineError as exc:
            if "syntax" in str(exc).lower():
                raise EngineError(
                    f"{self.server_version()} has no window functions: batching needs "
                    "MySQL 8.0 or MariaDB 10.2 or later"
                ) from exc
            raise
        any_rows = self._rows(f"SELECT EXISTS (SELECT 1 FROM {q(info.name)} {where})", params)
        return ranges_from_bounds(bounds, bool(any_rows[0][0]))

    def extract(
        self,
        table: str,
        columns: Sequence[str],
        key_cols: Sequence[str],
        key_range: KeyRange,
        *,
        changed_since: ChangedSince | None = None,
        arrow: bool = False,
    ) -> pd.DataFrame:
        """Rows of one key range, ordered by key, as object columns of str/None (``arrow``:
        Arrow-backed string columns, see extract_text). Read-only.

        Each row travels as one ``JSON_OBJECT`` of the columns' text, parsed by pyarrow: the
        driver decodes one value per row instead of one per column (~2.3x less client CPU)."""
        import pyarrow as pa  # here, not at import: the web and worker parents never need it
        import pyarrow.json as pa_json

        info = self._table(table)
        cols = info.require(columns)
        where, params = self._where(info, key_cols, key_range, changed_since)
        names = [f"c{i}" for i in range(len(cols))]
        row = ", ".join(f"'{n}', {text_expr(c)}" for n, c in zip(names, cols, strict=True))
        rows = self._rows(
            f"SELECT JSON_OBJECT({row}) FROM {q(info.name)} {where} ORDER BY {_qcols(key_cols)}",
            params,
        )
        if not rows or not cols:
            return text_frame(columns, {c: [None] * len(rows) for c in columns})
        lines = "\n".join(r[0] if isinstance(r[0], str) else r[0].decode() for r in rows)
        data = lines.encode()
        parsed = pa_json.read_json(
            io.BytesIO(data),
            read_options=pa_json.ReadOptions(block_size=max(1 << 20, len(data) + 1)),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema([(n, pa.string()) for n in names])
            ),
        )
        return arrow_frame(parsed.select(names), columns, arrow=arrow)

    def fetch_keys(self, table: str, key_cols: Sequence[str], keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` (source key text, ``|``-joined when composite) exist in ``table``.
        Read-only; a key that cannot be a value of the key columns is simply not found."""
        info = self._table(table)
        cols = info.require(key_cols)
        width = len(cols)
        probes: list[list[tuple[str, Any]]] = []
        for key in keys:
            parts = str(key).split("|", width - 1)
            if len(parts) != width:
                continue
            try:
                probes.append([_bound(c, v) for c, v in zip(cols, parts, strict=True)])
            except ValueError:
                continue
        text = "CONCAT_WS('|', " + ", ".join(text_expr(c) for c in cols) + ")"
        found: set[str] = set()
        for chunk in chunks(probes, _CHUNK):
            tuples = ", ".join("(" + ", ".join(e for e, _ in p) + ")" for p in chunk)
            args = [a for p in chunk for _, a in p]
            found.update(
                r[0]
                for r in self._rows(
                    f"SELECT {text} FROM {q(info.name)} WHERE ({_qcols(key_cols)}) IN ({tuples})",
                    args,
                )
            )
        return found

    def duplicate_values(self, table: str, column: str, limit: int = 20) -> tuple[int, list[str]]:
        """(how many distinct non-null values of ``column`` repeat, the first ``limit`` of
        them as text, sorted), counted by the database under the column's collation.
        Read-only; SchemaError."""
        info = self._table(table)
        col = info.column(column)
        if (col.name,) in info.unique:
            return 0, []  # a unique index already guarantees it
        inner = (
            f"SELECT {q(col.name)} FROM {q(info.name)} WHERE {q(col.name)} IS NOT NULL "
            f"GROUP BY {q(col.name)} HAVING COUNT(*) > 1"
        )
        rows = self._rows(
            f"SELECT COUNT(*) OVER (), {text_expr(col)} AS v FROM ({inner}) d ORDER BY v LIMIT %s",
            [int(limit)],
        )
        return (int(rows[0][0]) if rows else 0), [r[1] for r in rows]
