"""Pre-check column scans in bounded memory: source columns read together in key-range chunks as
whitespace-trimmed Arrow strings, counted with Arrow compute (RE2 regexes)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runs.engine.connectors import Connector, KeyRange
from runs.engine.safe_regex import regex_match_column
from runs.engine.snapshot import EntitySpec

CHUNK_ROWS = 25_000  # rows per chunk: bounded memory (~27 MB for two columns), no slower than 100k


def column_chunks(
    source: Connector, entity: EntitySpec, columns: list[str], ranges: dict[str, list[KeyRange]]
) -> Iterator[dict[str, pa.Array]]:
    """Several columns read together, chunk by chunk (one scan of the table for all of them),
    each trimmed. Read-only; engine errors raise."""
    if entity.name not in ranges:
        ranges[entity.name] = source.key_ranges(entity.source_table, entity.source_key, CHUNK_ROWS)
    # Arrow-backed strings where the connector offers them (PostgreSQL): no Python str per
    # value on the way in (0.18 s less per 1M rows)
    extract = getattr(source, "extract_text", source.extract)
    for key_range in ranges[entity.name]:
        values = extract(entity.source_table, columns, entity.source_key, key_range)
        yield {c: pc.utf8_trim_whitespace(_arrow_text(values[c])) for c in columns}


def _arrow_text(series: pd.Series) -> pa.Array:
    if isinstance(series.array, pd.arrays.ArrowStringArray):
        return pa.array(series.array)
    try:
        return pa.array(series.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([None if pd.isna(v) else str(v) for v in series], type=pa.string())


def _filled(text: pa.Array) -> pa.Array:
    """Non-null and not blank (``text`` already trimmed)."""
    return pc.fill_null(pc.not_equal(text, ""), False)


def _fullmatch(text: pa.Array, pattern: str) -> np.ndarray:
    """Which values match ``pattern`` entirely, always on RE2 (linear time): vectorised in
    Arrow, else google-re2; a pattern RE2 cannot run raises RegexRefused (never Python's re)."""
    return regex_match_column(text, pattern, full=True)


class FilledCount:
    """(rows, rows neither null nor blank), accumulated chunk by chunk."""

    def __init__(self) -> None:
        self.rows = self.filled = 0

    def add(self, text: pa.Array) -> None:
        self.rows += len(text)
        self.filled += pc.sum(_filled(text)).as_py() or 0


class FormatScan:
    """(non-blank values, values not matching ``pattern`` entirely, first 10 of those),
    accumulated chunk by chunk."""

    def __init__(self, pattern: str) -> None:
        self.pattern, self.total, self.bad = pattern, 0, 0
        self.examples: list[str] = []

    def add(self, chunk: pa.Array) -> None:
        text = chunk.filter(_filled(chunk))
        bad = ~_fullmatch(text, self.pattern)
        self.total += len(text)
        self.bad += int(bad.sum())
        room = 10 - len(self.examples)
        if room > 0:
            self.examples += text.filter(pa.array(bad)).slice(0, room).to_pylist()
