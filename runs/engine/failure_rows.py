"""The rows of a batch's failures: completed with their whole source row, described when the
target changed a loaded row, and rendered as text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from runs.engine.connectors.base import (
    ChangedSince,
    Connector,
    KeyRange,
    TableInfo,
    coerced_errors,
)
from runs.engine.failure_block import FailureBlock, one_block, segments
from runs.engine.rules.core import TEXT
from runs.engine.snapshot import EntitySpec
from runs.engine.transform import RowFailure, source_key_text

# Rows of full-row reads turned into records, over the process (tests count them).
RECORDED = {"rows": 0}


def complete_failures(failures: list[RowFailure], full_rows: Callable[..., dict] | None) -> None:
    """Give every failure its whole source row (all the source's columns, mapped or not);
    reads the source once for the batch's key range when a failure lacks columns, and turns
    only the failed rows of that read into records (``prime``)."""
    if full_rows is None:
        return
    whole = getattr(full_rows, "complete_block", None)
    if whole is not None:  # a block's failures at once, column-wise (failure_block)
        failures = [f for part in segments(failures) if not _completed(part, whole) for f in part]
    prime = getattr(full_rows, "prime", None)
    if prime is not None and failures:
        prime([f.source_key for f in failures])
    for failure in failures:
        failure.source_row = full_rows(failure.source_key, failure.source_row)


def _completed(part: list[RowFailure], whole: Callable[..., bool]) -> bool:
    """Whether ``part``, the whole of one block's untouched failures, was completed
    column-wise by ``whole`` (``full_rows_reader``'s ``complete_block``)."""
    found = one_block(part)
    if found is None or not np.array_equal(found[1], np.arange(found[0].source.num_rows)):
        return False
    return whole(found[0], part)


def failure_source_hashes(
    failures: list[RowFailure], frame: pd.DataFrame, entity: EntitySpec, hashes: list[str]
) -> None:
    """Set each failure's ``source_hash`` (runs.engine.unchanged: the hash of its extracted
    row), so a later run can carry it while its source row and rules (which include the
    target table's columns) are unchanged. ``hashes``: the source hash of each row of
    ``frame``, in order (``unchanged.frame_source_hashes``, computed once a batch). Pure
    but for setting the failures' field."""
    wanted = {f.source_key for f in failures}
    if not wanted:
        return
    keys = source_key_text(frame, entity.source_key)
    at = np.flatnonzero(keys.isin(wanted).to_numpy())
    # the last of a repeated key, as a dict over the rows in order gives it
    by_key = dict(zip(keys.to_numpy()[at].tolist(), (hashes[i] for i in at), strict=True))
    for failure in failures:
        failure.source_hash = by_key.get(failure.source_key, "")


def full_rows_reader(
    source: Connector,
    entity: EntitySpec,
    key_range: KeyRange,
    watermark: ChangedSince | None,
    table: TableInfo | None = None,
) -> Callable[..., dict]:
    """``full_rows`` for a batch: each failed row completed with the columns the plan does not
    extract, in the table's column order. Those columns come with the batch's own read
    (``extract_whole``: one statement, one snapshot; ``seed`` hands them over); when the batch
    did not read the range (a committed batch's stored failures, rows re-processed), the range
    is read for them on the first failed row. Rows the target coerced are found inside the
    load's transaction, where the source is not read (source and target may share a
    connection: ``fetch=False``); ``batch.process_frame`` completes them after the commit.
    ``table``: the source table as the batch just read its schema (else read once here)."""
    cache: dict[str, Any] = {}
    known: list[tuple[list[str], list[str]]] = []

    def columns() -> tuple[list[str], list[str]]:
        """(the table's columns in order, those the plan does not extract), read once."""
        from runs.engine.batch import source_columns

        if not known:
            info = table if table is not None else source.live_table(entity.source_table)
            order = list(info.column_names) if info is not None else []
            extracted = set(source_columns(entity))
            known.append((order, [c for c in order if c not in extracted]))
        return known[0]

    def seed(frame: pd.DataFrame) -> None:
        """The key range's rows as the batch read them, with the columns the plan does not
        extract (``extra``): the completion takes them from here."""
        order, extra = columns()
        cache["order"], cache["rows"], cache["extra"], cache["at"] = order, {}, None, {}
        cache["names"] = set(order)
        if extra:
            keys = source_key_text(frame, entity.source_key).tolist()
            cache["extra"] = frame[extra]
            cache["at"] = {k: i for i, k in enumerate(keys)}  # the last of a repeated key

    def load() -> None:
        extra = columns()[1]
        if not extra:
            seed(pd.DataFrame())
            return
        more = source.extract(
            entity.source_table,
            [*entity.source_key, *extra],
            entity.source_key,
            key_range,
            changed_since=watermark,
        )
        seed(more)

    def prime(keys: list[str], *, fetch: bool = True) -> None:
        """Records of the read's rows for ``keys`` (not for every row of the range: ~1 in 6
        rows fails, and the records were most of the completion's time)."""
        if "rows" not in cache:
            if not fetch:
                return
            load()
        rows, at = cache["rows"], cache["at"]
        wanted = [k for k in dict.fromkeys(keys) if k not in rows and k in at]
        if not wanted or cache["extra"] is None:
            return
        records = records_taken(cache["extra"], [at[k] for k in wanted])
        rows.update(zip(wanted, records, strict=True))
        RECORDED["rows"] += len(wanted)

    def complete(key: str, row: dict, *, fetch: bool = True) -> dict:
        if "rows" not in cache:
            if not fetch:
                return row
            load()
        if key not in cache["rows"]:
            prime([key])
        merged = {**cache["rows"].get(key, {}), **row}
        return _in_table_order(merged, cache["order"], cache["names"])

    def complete_block(block: FailureBlock, failures: list[RowFailure]) -> bool:
        """Complete every row of ``block`` (``failures``: its failures, in its order) as
        ``complete`` would each: when the read holds every key and the rows then hold the
        table's columns exactly, the columns the plan does not extract are taken by Arrow and
        the columns put in table order; else False (nothing changed)."""
        if "rows" not in cache:
            load()
        order, extra = cache["order"], cache["extra"]
        have = block.source.column_names
        if extra is None:
            if set(have) != cache["names"]:
                return False
            block.complete(block.source.select(order))
            return True
        at = cache["at"]
        positions = [at.get(f.source_key) for f in failures]
        names = [str(c) for c in extra.columns]
        if (
            None in positions
            or not extra.columns.is_unique
            or not _all_text(extra)
            or {*have, *names} != cache["names"]
            or names != list(extra.columns)
        ):
            return False
        taken = pa.array(positions, pa.int64())
        given = set(have)  # a column the row has wins over the read's (as {**read, **row})
        columns = {c: pa.array(extra[c].array).take(taken) for c in names if c not in given}
        block.complete(
            pa.Table.from_arrays(
                [block.source.column(c) if c in given else columns[c] for c in order],
                names=order,
            )
        )
        RECORDED["rows"] += len(set(positions))
        return True

    complete.prime = prime  # type: ignore[attr-defined]
    complete.complete_block = complete_block  # type: ignore[attr-defined]
    complete.seed = seed  # type: ignore[attr-defined]
    complete.extra = lambda: columns()[1]  # type: ignore[attr-defined]
    return complete


def _in_table_order(merged: dict, order: list[str], names: set[str]) -> dict:
    """``merged`` with the table's columns first, in the table's ``order`` (``names``: the
    same as a set), then any other column as it came. Pure."""
    if merged.keys() == names:  # the whole row (a failure's usual case): no other column
        return {c: merged[c] for c in order}
    present = [c for c in order if c in merged]
    return {c: merged[c] for c in [*present, *(c for c in merged if c not in present)]}


def records_taken(frame: pd.DataFrame, positions: list[int]) -> list[dict[str, Any]]:
    """The rows at ``positions`` as records of their raw values (missing = None): Arrow's take
    of each column when every column holds ``TEXT`` under a distinct name (~3,300 failed
    rows a batch), else pandas' ``to_dict``. Pure."""
    if not frame.shape[1] or not frame.columns.is_unique or not _all_text(frame):
        part = frame.iloc[positions]
        return part.astype(object).where(part.notna(), None).to_dict("records")
    return _text_records(frame, positions, list(frame.columns))


def _all_text(frame: pd.DataFrame) -> bool:
    return all(dtype == TEXT for dtype in frame.dtypes)


def _text_records(frame: pd.DataFrame, positions: Any, names: list[Any]) -> list[dict]:
    """Records (``names`` -> str or None) of the rows at ``positions`` of a frame of ``TEXT``
    columns, each column taken by Arrow at once. Pure."""
    taken = pa.array(positions, pa.int64())
    columns = [
        pa.array(frame.iloc[:, i].array).take(taken).to_pylist() for i in range(frame.shape[1])
    ]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def extract_whole(extract: Callable[..., pd.DataFrame], full_rows: Callable[..., dict]) -> Callable:
    """``extract`` that also reads the columns the plan does not extract, in the same
    statement, and hands the rows to ``full_rows`` (``full_rows_reader``): a batch with
    failures reads its key range once (before: a second read for the failures' whole rows,
    in another snapshot), a batch without pays for the extra columns' bytes only. Returns
    the frame of the asked columns alone. Read-only."""

    def read(table: str, columns: list[str], *args: Any, **kwargs: Any) -> pd.DataFrame:
        extra = full_rows.extra()  # type: ignore[attr-defined]
        if not extra:
            return extract(table, columns, *args, **kwargs)
        frame = extract(table, [*columns, *extra], *args, **kwargs)
        full_rows.seed(frame)  # type: ignore[attr-defined]
        return frame[list(columns)]

    return read


def coerced_describer(
    frame: pd.DataFrame,
    rows: pd.DataFrame,
    keys: list[str],
    full_rows: Callable[..., dict] | None = None,
) -> Callable[[int, list[tuple[str, str | None, str | None]]], dict[str, Any]]:
    """The result_meta failure of a loaded row the target changed (``coerced_by_target``):
    its source row, transformed row and one error per changed column."""

    def describe(position: int, diffs: list[tuple[str, str | None, str | None]]) -> dict:
        idx = rows.index[position]
        source_row = record(frame.loc[idx]) if idx in frame.index else {}
        if full_rows is not None:  # inside the target transaction: no source read here
            source_row = full_rows(keys[position], source_row, fetch=False)
        return {
            "source_key": keys[position],
            "source_row": source_row,
            "transformed_row": record(rows.loc[idx]),
            "stage": "load",
            "errors": coerced_errors(diffs),
        }

    return describe


def missing(value: object) -> bool:
    """None, NaN or pd.NA (frames may hold any of them for a missing value)."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def record(row: pd.Series) -> dict[str, str | None]:
    return {str(k): (None if missing(v) else str(v)) for k, v in row.items()}


def records_at(frame: pd.DataFrame, labels: list[Any]) -> list[dict[str, str | None]]:
    """``[record(frame.loc[label]) for label in labels]``, by Arrow's take of each column when
    every column holds ``TEXT`` and the index is unique (a row is then its columns' values):
    no pandas row per label (~60 µs each); any other frame row by row. Pure."""
    at = frame.index.get_indexer(labels) if frame.index.is_unique and labels else None
    if at is None or not frame.shape[1] or (at < 0).any() or not _all_text(frame):
        return [record(frame.loc[label]) for label in labels]
    return _text_records(frame, at, [str(c) for c in frame.columns])
