"""The failed rows' records taken column-wise (runs.engine.failure_rows.records_at) equal
the row-by-row definition they replace, for any text frame and any other frame."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.failure_rows import record, records_at
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
    assert records_at(frame, labels) == [record(frame.loc[label]) for label in labels]


def test_records_at_of_other_frames_is_the_row_by_row_record():
    mixed = pd.DataFrame({"n": [1, 2], "x": [0.5, None], "t": ["a", None]}, index=[7, 3])
    assert records_at(mixed, [3, 7]) == [record(mixed.loc[3]), record(mixed.loc[7])]
    text = pd.DataFrame({"a": pd.Series(["x", "y"], dtype=TEXT)}, index=[1, 1])
    assert records_at(text, [1]) == [record(text.loc[1])]  # a repeated label: as before
    with pytest.raises(KeyError):
        records_at(mixed, [99])
