"""The failed rows' records taken column-wise (runs.engine.failure_rows.records_at) equal
the row-by-row definition they replace, for any text frame and any other frame."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.failure_rows import _in_table_order, record, records_at, records_taken
from runs.engine.rules.core import TEXT

_VALUE = st.one_of(st.none(), st.text(max_size=8))


@st.composite
def _frames(draw):
    width = draw(st.integers(1, 4))
    height = draw(st.integers(1, 12))
    names = draw(st.lists(st.text(min_size=1, max_size=3), min_size=width, max_size=width))
    index = draw(st.lists(st.integers(-50, 50), min_size=height, max_size=height, unique=True))
    columns = [draw(st.lists(_VALUE, min_size=height, max_size=height)) for _ in names]
    frame = pd.DataFrame(
        {i: pd.Series(values, dtype=TEXT) for i, values in enumerate(columns)}, index=index
    )
    frame.columns = names  # names may repeat, as a frame's columns can
    labels = draw(st.lists(st.sampled_from(index), max_size=height))
    return frame, labels


@given(case=_frames())
@settings(max_examples=300, deadline=None)
def test_records_at_equals_a_record_per_row_for_any_text_frame(case):
    frame, labels = case
    got, meant = records_at(frame, labels), [record(frame.loc[label]) for label in labels]
    assert got == meant
    assert [list(r) for r in got] == [list(r) for r in meant]


def test_records_at_of_other_frames_is_the_row_by_row_record():
    mixed = pd.DataFrame({"n": [1, 2], "x": [0.5, None], "t": ["a", None]}, index=[7, 3])
    assert records_at(mixed, [3, 7]) == [record(mixed.loc[3]), record(mixed.loc[7])]
    text = pd.DataFrame({"a": pd.Series(["x", "y"], dtype=TEXT)}, index=[1, 1])
    assert records_at(text, [1]) == [record(text.loc[1])]  # a repeated label: as before
    with pytest.raises(KeyError):
        records_at(mixed, [99])


def _records_taken_definition(frame, positions):
    part = frame.iloc[positions]
    return part.astype(object).where(part.notna(), None).to_dict("records")


@given(case=_frames(), data=st.data())
@settings(max_examples=300, deadline=None)
def test_records_taken_equals_pandas_records_for_any_frame(case, data):
    frame, _ = case
    positions = data.draw(st.lists(st.integers(0, len(frame) - 1), max_size=len(frame)))
    if not frame.columns.is_unique:  # a table's columns (what the reader takes) are unique
        return
    for shape in (frame, frame.astype(object).assign(n=range(len(frame)))):
        got, meant = records_taken(shape, positions), _records_taken_definition(shape, positions)
        assert got == meant
        assert [list(r) for r in got] == [list(r) for r in meant]  # and in column order


def _in_order_definition(merged, order):
    present = [c for c in order if c in merged]
    return {c: merged[c] for c in [*present, *(c for c in merged if c not in present)]}


_NAMES = st.sampled_from(["id", "a", "b", "c", "x", "y"])


@given(
    order=st.lists(_NAMES, unique=True),
    merged=st.dictionaries(_NAMES, _VALUE),
)
@settings(max_examples=300, deadline=None)
def test_in_table_order_equals_its_definition(order, merged):
    got = _in_table_order(merged, order, set(order))
    assert got == _in_order_definition(merged, order)
    assert list(got) == list(_in_order_definition(merged, order))
