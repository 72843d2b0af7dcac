"""Load validation's canonical spellings (runs.engine.connectors.base.validation): a value
matching one is good without the per-value parse, so each must be a subset of what that
parse accepts — the verdicts equal the per-value definition for any values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.connectors.base import validation
from runs.engine.connectors.base.schema import ColumnInfo
from runs.engine.rules.core import TEXT

_PART = {
    "year": st.sampled_from(
        ["0001", "1677", "1678", "1900", "2000", "2024", "2261", "2262", "9999"]
    ),
    "month": st.sampled_from(["00", "01", "02", "04", "06", "09", "11", "12", "13"]),
    "day": st.sampled_from(["00", "01", "09", "28", "29", "30", "31", "32"]),
    "hour": st.sampled_from(["00", "09", "23", "24"]),
    "minute": st.sampled_from(["00", "59", "60"]),
}


@st.composite
def _stamps(draw, with_time: bool):
    p = {k: draw(v) for k, v in _PART.items()}
    text = f"{p['year']}-{p['month']}-{p['day']}"
    if with_time:
        text += f" {p['hour']}:{p['minute']}:{p['minute']}"
    # and some near misses: blanks, a T, a zone, a cut value, any text
    return draw(
        st.sampled_from([text, f" {text}", text.replace(" ", "T"), text + "+02", text[:-1]])
        | st.text(max_size=20)
    )


def _verdicts(col: ColumnInfo, values: list[str | None]) -> list[tuple[str, list[bool]]]:
    """Each problem that flags a row, in order (a mask flagging none finds no error)."""
    series = pd.Series(values, dtype=TEXT)
    problems = validation._column_problems(col, series)
    return [(kind, mask.tolist()) for kind, mask, _ in problems if mask.any()]


@pytest.mark.parametrize(
    ("family", "with_time"), [("timestamp without time zone", True), ("date", False)]
)
@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_a_canonical_date_is_judged_as_the_per_value_parse_judges_it(family, with_time, data):
    values = data.draw(st.lists(_stamps(with_time) | st.none(), max_size=12))
    col = ColumnInfo("d", family, nullable=False, cast_type=family, base_type=family)
    got = _verdicts(col, values)
    with pytest.MonkeyPatch.context() as m:  # the per-value definition alone
        m.setattr(validation, "_CANONICAL", {})
        meant = _verdicts(col, values)
    assert got == meant


def test_the_canonical_dates_skip_the_per_value_parse_and_keep_its_refusals():
    col = ColumnInfo("d", "timestamp", cast_type="timestamp", base_type="timestamp")
    values = ["2024-02-28 23:59:59", "2024-02-30 00:00:00", "2024-02-29 12:00:00", None]
    assert _verdicts(col, values) == [("type_cast", [False, True, False, False])]
    canonical = validation._CANONICAL["timestamp"]
    matched = pd.Series(values, dtype=TEXT).str.fullmatch(canonical).fillna(False)
    assert np.array_equal(
        matched.to_numpy(dtype=bool), [True, False, False, False]
    )  # Feb 29: parsed
