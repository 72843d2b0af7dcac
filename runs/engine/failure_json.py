"""Failed rows' values as JSON text by Arrow's kernels: each row of a table of text columns as
the JSON object orjson would write for its dict, byte for byte (the failed records' COPY and
the ledger's packed failures, runs.engine.failure_block)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

NULL = pa.scalar("null", pa.large_string())
EMPTY = pa.scalar("", pa.large_string())


def json_objects(table: pa.Table) -> pa.Array:
    """Each row of a table of text columns as the JSON text of its dict (column -> str or
    None, in column order): byte for byte ``orjson.dumps`` of the row's record, built by
    Arrow's kernels (a value with something to escape by orjson itself). Pure."""
    n = table.num_rows
    if not table.num_columns:
        return pa.array(["{}"] * n, pa.large_string())
    pieces: list[Any] = []  # '{"a":', a's value, ',"b":', b's value, ..., '}': one join
    for i, name in enumerate(table.column_names):
        key = ("{" if not i else ",") + orjson.dumps(str(name)).decode() + ":"
        pieces += [
            pa.scalar(key, pa.large_string()),
            pc.fill_null(json_strings(table.column(i)), NULL),
        ]
    return pc.binary_join_element_wise(*pieces, pa.scalar("}", pa.large_string()), EMPTY)


def json_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each text as a JSON string literal (orjson's bytes), null kept null. Pure."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(pa.large_string())
    quote = pa.scalar('"', pa.large_string())
    quoted = pc.binary_join_element_wise(quote, values, quote, EMPTY)
    at = _escaped_at(values)
    if not len(at):
        return quoted
    fixed = [orjson.dumps(v).decode() for v in values.take(pa.array(at)).to_pylist()]
    mask = np.zeros(len(values), dtype=bool)
    mask[at] = True
    return pc.replace_with_mask(quoted, pa.array(mask), pa.array(fixed, pa.large_string()))


def _escaped_at(values: pa.LargeStringArray) -> np.ndarray:
    """Positions (ascending) of the values holding a byte JSON escapes: a control character,
    '"' or a backslash (UTF-8's other characters never use those bytes). By numpy over the
    array's bytes (a regex per value took ~15 times as long). Pure."""
    _, offsets_buffer, data = values.buffers()
    if data is None or not len(values):
        return np.zeros(0, dtype=np.int64)
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
        values.offset : values.offset + len(values) + 1
    ]
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
    bad = np.flatnonzero((raw < 0x20) | (raw == 0x22) | (raw == 0x5C))
    if not len(bad):
        return bad
    return np.unique(np.searchsorted(offsets, bad + offsets[0], side="right") - 1)
