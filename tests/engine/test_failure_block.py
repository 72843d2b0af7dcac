"""A batch's failures column-wise (runs.engine.failure_block) equal the row-by-row failures
they replace: the same rows as dicts (values and column order), the same completion with the
source's other columns, the same JSON bytes, the same ledger result_meta."""

from __future__ import annotations

import copy

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.connectors.base import ColumnInfo, TableInfo
from runs.engine.failure_block import (
    FailureMetas,
    block_failures,
    failure_metas,
    json_objects,
    one_block,
    records,
    row_dicts,
    segments,
    table_records,
    taken,
)
from runs.engine.failure_rows import complete_failures, full_rows_reader
from runs.engine.outcome import BatchOutcome
from runs.engine.rules.core import TEXT
from runs.engine.snapshot import EntitySpec, FieldSpec
from runs.engine.transform import FieldError, RowFailure

# any text JSON must escape or may carry raw: controls, quotes, backslashes, non-ASCII
_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from('\x00\x01\x08\t\n\x0c\r\x1f\x7f"\\/é€😀 ab'),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=12,
)
_VALUE = st.one_of(st.none(), _TEXT)


@st.composite
def _tables(draw, min_width=0):
    width = draw(st.integers(min_width, 5))
    height = draw(st.integers(0, 9))
    names = draw(st.lists(_TEXT, min_size=width, max_size=width, unique=True))
    columns = [draw(st.lists(_VALUE, min_size=height, max_size=height)) for _ in names]
    return pa.Table.from_arrays([pa.array(c, pa.large_string()) for c in columns], names=names)


@given(table=_tables())
@settings(max_examples=400, deadline=None)
def test_json_objects_are_orjsons_bytes_for_any_text_table(table):
    for part in (table, table.slice(min(1, table.num_rows))):  # a slice: offsets into buffers
        got = json_objects(part).to_pylist()
        meant = [orjson.dumps(r).decode() for r in table_records(part)]
        assert got == meant
        assert len(got) == part.num_rows


def test_json_objects_of_chunked_and_narrow_strings():
    table = pa.table({"a": pa.chunked_array([["x", None], ['q"\\\t']], pa.string())})
    assert json_objects(table).to_pylist() == [
        '{"a":"x"}',
        '{"a":null}',
        orjson.dumps({"a": 'q"\\\t'}).decode(),
    ]


@given(table=_tables(min_width=1), data=st.data())
@settings(max_examples=200, deadline=None)
def test_taken_rows_are_the_transforms_records(table, data):
    """``taken`` (the block's tables) holds what ``records`` (the old dicts) made."""
    frame = pd.DataFrame(
        {n: pd.Series(table.column(n).to_pylist(), dtype=TEXT) for n in table.column_names}
    )
    positions = np.array(
        data.draw(st.lists(st.integers(0, max(len(frame) - 1, 0)), max_size=len(frame)))
        if len(frame)
        else [],
        dtype=np.int64,
    )
    got, meant = table_records(taken(frame, positions)), records(frame, positions)
    assert got == meant
    assert [list(r) for r in got] == [list(r) for r in meant]


def _errors(n):
    return [[FieldError("f", "r", str(i), f"m{i}", "c")] for i in range(n)]


def _plain(failures):
    """The same failures as RowFailures holding their rows as dicts (the old form)."""
    return [
        RowFailure(
            f.source_key,
            copy.deepcopy(f.source_row),
            copy.deepcopy(f.transformed_row),
            f.stage,
            list(f.errors),
            f.source_hash,
        )
        for f in failures
    ]


def _block(source, transformed, keys):
    return block_failures(source, transformed, keys, _errors(len(keys)))


@given(source=_tables(), transformed=_tables())
@settings(max_examples=150, deadline=None)
def test_block_failures_read_as_row_failures_and_to_meta_is_unchanged(source, transformed):
    n = min(source.num_rows, transformed.num_rows)
    source, transformed = source.slice(0, n), transformed.slice(0, n)
    keys = [str(i) for i in range(n)]
    block = _block(source, transformed, keys)
    for f in block:
        f.source_hash = f"h{f.source_key}"
    # to_meta leaves the block's failures unread: the COPY can still take the block's rows
    meta = BatchOutcome(failed=n, extracted=n, failures=block).to_meta()
    packed = meta["failures"].json_bytes() if n else None
    assert one_block(block) is not None or n == 0
    plain = _plain(_block(source, transformed, keys))
    for f in plain:
        f.source_hash = f"h{f.source_key}"
    old = BatchOutcome(failed=n, extracted=n, failures=plain).to_meta()
    assert isinstance(old["failures"], list)
    assert packed is None or packed == orjson.dumps(old["failures"], default=str)
    assert block == plain and plain == block
    listed = {**meta, "failures": list(meta["failures"])}
    assert orjson.dumps(listed) == orjson.dumps(old)  # values and key order
    assert meta["failures"] == old["failures"]
    assert all(m["source_row"] is not f.source_row for m, f in zip(meta["failures"], block))


@given(source=_tables(), plain_at=st.sets(st.integers(0, 9)), data=st.data())
@settings(max_examples=150, deadline=None)
def test_the_ledgers_json_of_mixed_failures_is_orjsons(source, plain_at, data):
    """FailureMetas.json_bytes (what the ledger packs) is orjson's dump of the dicts, whatever
    the mix of block failures, read ones and others (and odd errors' values)."""
    n = source.num_rows
    keys = [f"k{i}" for i in range(n)]
    made = _block(source, source, keys)
    failures = []
    for i, f in enumerate(made):
        f.source_hash = data.draw(_TEXT)
        f.errors = [
            FieldError(
                "f", "r", data.draw(st.one_of(_VALUE, st.integers(-(2**63), 2**63 - 1))), "m", "c"
            )
        ]
        if i in plain_at:
            f = RowFailure(f.source_key, f.source_row, f.transformed_row, "load", f.errors)
        failures.append(f)
    metas = FailureMetas(failures)
    packed = metas.json_bytes()  # before anything reads the block's rows
    listed = failure_metas(_plain(failures))
    assert packed == orjson.dumps(listed, default=str)
    assert metas == listed and len(metas) == n


def test_a_read_or_set_row_is_the_failures_own():
    table = pa.table({"a": ["x", "y"]})
    first, second = _block(table, table, ["1", "2"])
    assert one_block([first, second]) is not None
    row = first.source_row
    row["a"] = "changed"  # a reader may change the dict it got: the failure keeps it
    assert one_block([first, second]) is None and one_block([second]) is not None
    assert first.source_row == {"a": "changed"} and second.source_row == {"a": "y"}
    assert one_block([second]) is None  # read: no longer the block's
    second.transformed_row = {"b": None}
    assert second.transformed_row == {"b": None}
    assert row_dicts([first, second], "source") == [{"a": "changed"}, {"a": "y"}]
    third, fourth = _block(table, table, ["3", "4"])
    plain = RowFailure("5", {}, {}, "load")
    parts = segments([plain, third, fourth, first, plain])
    assert [[f.source_key for f in p] for p in parts] == [["5"], ["3", "4"], ["1", "5"]]


_ENTITY = EntitySpec(
    name="e",
    source_table="t",
    target_table="u",
    source_key=("id",),
    target_key="id",
    fields=(FieldSpec(target="name", sources=("name",)),),
)


class _NoRead:
    def extract(self, *_a, **_k):
        raise AssertionError("the batch's own read holds the rows")


@given(
    extra=st.lists(st.sampled_from(["x", "y", "z"]), unique=True),
    values=st.lists(st.tuples(_VALUE, _VALUE, _VALUE), min_size=1, max_size=8),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_a_blocks_completion_equals_each_failures(extra, values, data):
    """The columns the plan does not extract, added column-wise, equal the per-failure
    completion (``{**read, **row}`` in table order), repeated keys and all."""
    order = data.draw(st.permutations(["id", "name", *extra]))
    table = TableInfo("t", tuple(ColumnInfo(c, "text") for c in order))
    n = len(values)
    keys = [str(data.draw(st.integers(0, n))) for _ in range(n)]  # keys may repeat
    read = pd.DataFrame(
        {
            "id": pd.Series(keys, dtype=TEXT),
            "name": pd.Series([v[0] for v in values], dtype=TEXT),
            **{
                c: pd.Series([v[1 + i % 2] for v in values], dtype=TEXT)
                for i, c in enumerate(extra)
            },
        }
    )
    failing = sorted(set(data.draw(st.lists(st.integers(0, n - 1), max_size=n))))
    source = pa.table(
        {
            "id": pa.array([keys[i] for i in failing], pa.large_string()),
            "name": pa.array([values[i][0] for i in failing], pa.large_string()),
        }
    )
    transformed = pa.table({"name": pa.array([values[i][2] for i in failing], pa.large_string())})
    readers = []
    for _ in range(2):
        reader = full_rows_reader(_NoRead(), _ENTITY, None, None, table)
        reader.seed(read)
        readers.append(reader)
    block = _block(source, transformed, [keys[i] for i in failing])
    plain = _plain(_block(source, transformed, [keys[i] for i in failing]))  # (reads them)
    complete_failures(block, readers[0])
    complete_failures(plain, readers[1])
    # completed column-wise: untouched, the COPY can take the block's rows
    assert not block or one_block(block) is not None
    assert block == plain
    assert [list(f.source_row) for f in block] == [list(f.source_row) for f in plain]
