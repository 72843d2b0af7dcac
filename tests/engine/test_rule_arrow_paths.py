"""Rules computed with Arrow's kernels directly instead of through pandas (issue 20: the 1 M
run's workers' CPU): each gives what the definition it replaced gives (kept here as the
reference), for any value."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs.engine.rules import TEXT, RuleContext
from runs.engine.rules.core import _WS_RUN, _blank, _null_where, as_text
from runs.engine.rules.dates import _iso_text
from runs.engine.rules.text import _trim

SLOW = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u00a0", "\u2003", ""]


def trim_reference(values: pd.Series, params: dict) -> pd.Series:
    """trim as it was defined with pandas' string methods."""
    out = as_text(values)
    if params["collapse_inner"]:
        out = out.str.replace(_WS_RUN, " ", regex=True)
    out = out.str.strip()
    if params["empty_to_null"]:
        out = _null_where(out, _blank(out))
    return out


@st.composite
def spaced(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.text(max_size=4) | st.sampled_from(["a", "Ünï", "x y"]), max_size=5))
    gaps = draw(st.lists(st.sampled_from(SPACES), min_size=len(words) + 1, max_size=len(words) + 1))
    return gaps[0] + "".join(w + g for w, g in zip(words, gaps[1:], strict=True))


def _plain(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series.tolist()]


@SLOW
@given(
    st.lists(spaced() | st.none(), max_size=25),
    st.booleans(),
    st.booleans(),
)
def test_trim_is_the_pandas_definition_for_any_text(texts, collapse, empty_to_null):
    values = pd.Series(texts, dtype=TEXT, index=range(3, 3 + len(texts)))
    params = {"collapse_inner": collapse, "empty_to_null": empty_to_null}
    got = _trim(values, params, RuleContext())
    want = trim_reference(values, params)
    assert got.errors is None
    assert _plain(got.values) == _plain(want)
    assert list(got.values.index) == list(values.index)
    assert got.values.dtype == TEXT


SECONDS = st.integers(
    min_value=int(np.datetime64("0001-01-01T00:00:00", "s").astype(np.int64)),
    max_value=int(np.datetime64("9999-12-31T23:59:59", "s").astype(np.int64)),
)


@SLOW
@given(st.lists(SECONDS | st.none(), max_size=30), st.sampled_from(["date", "datetime"]))
def test_iso_text_is_numpys_iso_form_for_any_date(seconds, output):
    parsed = np.array(
        [np.datetime64("NaT") if s is None else np.datetime64(s, "s") for s in seconds],
        dtype="datetime64[s]",
    )
    nat = np.isnat(parsed)
    unit = "D" if output == "date" else "s"
    want = [
        None if n else t.replace("T", " ")
        for t, n in zip(np.datetime_as_string(parsed, unit=unit), nat, strict=True)
    ]
    assert _iso_text(parsed, nat, output).to_pylist() == want


@SLOW
@given(
    st.lists(st.text(max_size=3) | st.none(), min_size=1, max_size=20),
    st.lists(st.text(max_size=3) | st.none(), min_size=1, max_size=20),
    st.data(),
)
def test_a_chains_row_picks_and_comparisons_are_pythons(before, after, data):
    from runs.engine.transform import _describe, _passed_through, _texts_at

    n = min(len(before), len(after))
    a = pd.Series(before[:n], dtype=TEXT, index=range(10, 10 + n))
    b = pd.Series(after[:n], dtype=TEXT, index=range(10, 10 + n))
    positions = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1)))), dtype=np.int64)
    assert _texts_at(a, positions) == [before[i] for i in positions]
    assert _describe(a, positions) == [before[i] for i in positions]
    same = [before[i] == after[i] for i in positions]
    assert _passed_through(a, b, positions).tolist() == same
