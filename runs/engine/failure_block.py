"""A batch's failed rows kept column-wise (Arrow) from the transform to the failed records'
COPY: ``FailureBlock`` holds the failed rows' source and transformed values as two tables, and
each failure a ``BlockFailure`` (a ``RowFailure``) whose two rows are read from it on first
use. The batch's ~3,300 failures a batch then cost no dict per row on the hot path: the
completion adds the source's other columns to the table (``runs.engine.failure_rows``), the
failed records' JSON is built by Arrow's kernels (``json_objects``), and every other reader
gets the same rows as dicts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runs.engine.failure_json import EMPTY, json_objects, json_strings
from runs.engine.rules.core import _arrow
from runs.engine.transform import FieldError, RowFailure


class FailureBlock:
    """The failed rows of one batch part, one row per failure: ``source`` and
    ``transformed`` as tables of text columns (missing = null), in the failures' order.
    ``source`` may be replaced once by its completed form (the source's other columns)."""

    def __init__(self, source: pa.Table, transformed: pa.Table) -> None:
        self.source, self.transformed = source, transformed
        self._handed: dict[str, list[dict[str, str | None]]] = {}
        self._json: dict[str, pa.Array] = {}

    def records(self, part: str) -> list[dict[str, str | None]]:
        """Fresh dicts (column -> str or None) of every row of ``part`` ("source" or
        "transformed"), in column order. Pure."""
        return table_records(getattr(self, part))

    def handed(self, part: str, at: int) -> dict[str, str | None]:
        """The dict of row ``at`` a failure owns (the part's records, made once)."""
        if part not in self._handed:
            self._handed[part] = self.records(part)
        return self._handed[part][at]

    def json(self, part: str) -> pa.Array:
        """Each row of ``part`` as its JSON object text (``json_objects``), made once."""
        if part not in self._json:
            self._json[part] = json_objects(getattr(self, part))
        return self._json[part]

    def complete(self, source: pa.Table) -> None:
        """Replace the source rows by their completed form (same rows, more columns)."""
        self.source = source
        self._handed.pop("source", None)
        self._json.pop("source", None)


class BlockFailure(RowFailure):
    """A ``RowFailure`` whose ``source_row`` and ``transformed_row`` are row ``at`` of its
    ``block``, made into dicts on first read (or set as any RowFailure's). ``untouched``:
    neither row was read or set, so the block's row is the failure's (the column-wise
    readers may use it)."""

    def __init__(
        self,
        block: FailureBlock,
        at: int,
        source_key: str,
        stage: str,
        errors: list[FieldError],
    ) -> None:
        self.block, self.at = block, at
        self.source_key, self.stage, self.errors, self.source_hash = source_key, stage, errors, ""
        self._rows: dict[str, dict[str, str | None]] = {}

    def _row(self, part: str) -> dict[str, str | None]:
        if part not in self._rows:
            self._rows[part] = self.block.handed(part, self.at)
        return self._rows[part]

    @property  # type: ignore[override]
    def source_row(self) -> dict[str, str | None]:
        """The whole source row (the block's, once completed)."""
        return self._row("source")

    @source_row.setter
    def source_row(self, value: dict[str, str | None]) -> None:
        self._rows["source"] = value

    @property  # type: ignore[override]
    def transformed_row(self) -> dict[str, str | None]:
        """Every field's chain output (a failed field: the value its failing step got)."""
        return self._row("transformed")

    @transformed_row.setter
    def transformed_row(self, value: dict[str, str | None]) -> None:
        self._rows["transformed"] = value

    @property
    def untouched(self) -> bool:
        return not self._rows

    def __eq__(self, other: object) -> bool:
        """Equal to any RowFailure with the same fields (as RowFailures compare)."""
        if not isinstance(other, RowFailure):
            return NotImplemented
        return _fields(self) == _fields(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, as RowFailure


def _fields(f: RowFailure) -> tuple:
    return (f.source_key, f.source_row, f.transformed_row, f.stage, f.errors, f.source_hash)


def block_failures(
    source: pa.Table, transformed: pa.Table, keys: list[str], errors: list[list[FieldError]]
) -> list[RowFailure]:
    """One ``BlockFailure`` (stage "transform") per row of the two tables. Pure."""
    block = FailureBlock(source, transformed)
    return [
        BlockFailure(block, at, key, "transform", errs)
        for at, (key, errs) in enumerate(zip(keys, errors, strict=True))
    ]


def table_records(table: pa.Table) -> list[dict[str, str | None]]:
    """The rows of ``table`` as dicts, in column order (the engine's records). Pure."""
    names = table.column_names
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    if not columns:
        return [{} for _ in range(table.num_rows)]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def row_dicts(failures: Sequence[RowFailure], part: str) -> list[dict[str, Any]]:
    """``[dict(f.source_row) for f in failures]`` (or ``transformed_row``): fresh dicts, those
    of untouched block failures made from their block at once, without reading them. Pure."""
    made: dict[int, list[dict]] = {}
    out = []
    for f in failures:
        if isinstance(f, BlockFailure) and f.untouched:
            rows = made.get(id(f.block))
            if rows is None:
                rows = made[id(f.block)] = f.block.records(part)
            out.append(rows[f.at])
        else:
            out.append(dict(getattr(f, f"{part}_row")))
    return out


def failure_metas(failures: Sequence[RowFailure]) -> list[dict[str, Any]]:
    """The failures as the ledger's result_meta keeps them: fresh dicts (the rows too, those
    of untouched block failures made from the block). Pure."""
    # Built by hand: dataclasses.asdict deep-copies every value (~15 us per failure).
    sources, transformed = row_dicts(failures, "source"), row_dicts(failures, "transformed")
    return [
        {
            "source_key": f.source_key,
            "source_row": source_row,
            "transformed_row": transformed_row,
            "stage": f.stage,
            "source_hash": f.source_hash,
            "errors": _error_dicts(f.errors),
        }
        for f, source_row, transformed_row in zip(failures, sources, transformed, strict=True)
    ]


def _error_dicts(errors: list[FieldError]) -> list[dict[str, Any]]:
    return [
        {
            "field": e.field,
            "rule": e.rule,
            "value": e.value,
            "message": e.message,
            "category": e.category,
        }
        for e in errors
    ]


class FailureMetas(Sequence[dict[str, Any]]):
    """``failure_metas(failures)``, made on first read, and its JSON (``json_bytes``) made
    without them where the failures are a block's: the ledger packs the JSON, so a batch's
    ~3,300 failures become no dicts on the way. A view of the failures as they are when read
    (the engine reads it in the load, before anything changes them)."""

    def __init__(self, failures: Sequence[RowFailure]) -> None:
        self._failures = list(failures)
        self._made: list[dict[str, Any]] | None = None

    def _list(self) -> list[dict[str, Any]]:
        if self._made is None:
            self._made = failure_metas(self._failures)
        return self._made

    def __len__(self) -> int:
        return len(self._failures)

    def __getitem__(self, at: Any) -> Any:
        return self._list()[at]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FailureMetas | list | tuple):
            return self._list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def json_bytes(self) -> bytes:
        """Byte for byte ``orjson.dumps(list(self), default=str)``: a block's failures by
        Arrow from the block's JSON (``json_objects``, the failed records' COPY reuses it),
        the others by orjson. Pure."""
        parts = []
        for part in segments(self._failures):
            found = one_block(part)
            inner = _block_json(*found, part) if found is not None else None
            if inner is None:
                inner = orjson.dumps(failure_metas(part), default=str)[1:-1]
            if inner:
                parts.append(inner)
        return b"[" + b",".join(parts) + b"]"


_STR = frozenset({str})


def _text(values: list[str]) -> pa.Array:
    return json_strings(pa.array(values, pa.large_string()))


def _block_json(block: FailureBlock, at: np.ndarray, part: Sequence[RowFailure]) -> bytes | None:
    """The JSON of ``part`` (untouched failures of ``block`` at rows ``at``) as
    ``failure_metas`` would dump it, without the enclosing brackets; None when a key, stage or
    hash is not text (orjson's own then)."""
    keys, stages = [f.source_key for f in part], [f.stage for f in part]
    hashes = [f.source_hash for f in part]
    if not set(map(type, [*keys, *stages, *hashes])) <= _STR:
        return None
    taken = pa.array(at, pa.int64())
    errors = [orjson.dumps(_error_dicts(f.errors), default=str).decode() for f in part]

    def text(value: str) -> pa.Scalar:
        return pa.scalar(value, pa.large_string())

    rows = pc.binary_join_element_wise(
        text('{"source_key":'),
        _text(keys),
        text(',"source_row":'),
        block.json("source").take(taken),
        text(',"transformed_row":'),
        block.json("transformed").take(taken),
        text(',"stage":'),
        _text(stages),
        text(',"source_hash":'),
        _text(hashes),
        text(',"errors":'),
        pa.array(errors, pa.large_string()),
        text("},"),
        EMPTY,
    )
    # the rows' texts lie one after the other in the array's data: taken at once, the
    # last row's comma dropped (no join into one Python str and its encoding)
    _, offsets, data = rows.buffers()
    ends = np.frombuffer(offsets, dtype=np.int64)[rows.offset : rows.offset + len(rows) + 1]
    return data[int(ends[0]) : int(ends[-1]) - 1].to_pybytes() if len(rows) else b""


def one_block(failures: Sequence[RowFailure]) -> tuple[FailureBlock, np.ndarray] | None:
    """(block, rows) when every failure is an untouched ``BlockFailure`` of one block,
    else None. Pure."""
    if not failures:
        return None
    first = failures[0]
    if not isinstance(first, BlockFailure):
        return None
    block = first.block
    for f in failures:
        if not (isinstance(f, BlockFailure) and f.block is block and f.untouched):
            return None
    return block, np.fromiter((f.at for f in failures), dtype=np.int64, count=len(failures))


def segments(failures: Sequence[RowFailure]) -> list[Sequence[RowFailure]]:
    """``failures`` cut into runs of untouched failures of one block and runs of others, in
    order (each run can then be written column-wise or row by row). Pure."""
    out: list[Sequence[RowFailure]] = []
    start, kind = 0, None
    for i, f in enumerate(failures):
        this = id(f.block) if isinstance(f, BlockFailure) and f.untouched else None
        if i and this != kind:
            out.append(failures[start:i])
            start = i
        kind = this
    if len(failures):
        out.append(failures[start:])
    return out


# --------------------------------------------------------------------------- the transform's


def transform_failures(
    frame: pd.DataFrame,
    out: pd.DataFrame,
    keys: pd.Series,
    outcomes: list[Any],
    failed: np.ndarray,
) -> list[RowFailure]:
    """One failure (stage "transform") per ``failed`` row of the transform's input ``frame``
    and output ``out``, its fields' errors (``outcomes``: each field's, in field order) in
    field order: a block's (the rows column-wise) where each frame's columns are distinct
    texts, else with dicts (``row_failures``). Pure."""
    by_row: dict[int, list[FieldError]] = {}
    for outcome in outcomes:  # field order, so each row's errors come out in field order
        for pos, errors in outcome.errors.items():
            by_row.setdefault(int(pos), []).extend(errors)
    positions = np.flatnonzero(failed)
    key_texts = keys.to_numpy(dtype=object)[positions].tolist()
    names = [*frame.columns, *out.columns]
    if not (frame.columns.is_unique and out.columns.is_unique and all(map(_is_str, names))):
        return row_failures(frame, out, positions, key_texts, by_row)
    return block_failures(
        taken(frame, positions),
        taken(out, positions),
        key_texts,
        [by_row[pos] for pos in positions.tolist()],
    )


def _is_str(name: object) -> bool:
    return isinstance(name, str)


def taken(frame: pd.DataFrame, positions: np.ndarray) -> pa.Table:
    """The rows at ``positions`` as a table of text columns (Arrow's take of each). Pure."""
    at = pa.array(positions, pa.int64())
    return pa.Table.from_arrays(
        [_arrow(frame[c]).take(at) for c in frame.columns], names=list(frame.columns)
    )


def records(frame: pd.DataFrame, positions: np.ndarray) -> list[dict[str, str | None]]:
    """The rows at ``positions`` as dicts of str or None (the failures' rows before blocks)."""
    cols = {
        c: _arrow(frame[c]).take(pa.array(positions, pa.int64())).to_pylist() for c in frame.columns
    }
    return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def row_failures(
    frame: pd.DataFrame,
    out: pd.DataFrame,
    positions: np.ndarray,
    key_texts: list[str],
    by_row: dict[int, list[FieldError]],
) -> list[RowFailure]:
    """The failures with their rows as dicts (``transform_failures``' definition). Pure."""
    sources = records(frame, positions)
    transformed = records(out, positions)
    return [
        RowFailure(
            source_key=key,
            source_row=source_row,
            transformed_row=transformed_row,
            stage="transform",
            errors=by_row[pos],
        )
        for pos, key, source_row, transformed_row in zip(
            positions.tolist(), key_texts, sources, transformed, strict=True
        )
    ]
