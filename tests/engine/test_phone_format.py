"""phone_format finds and writes the digits with numpy over the values' UTF-8 bytes (issue 20:
the regex removal of non-digits and the regex rewrite were most of the rule's ~16 ms per
20,000 values). The result, nulls and errors are those of the pandas/RE2 definition it
replaced (kept here as the reference), for any text."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs.engine.rules import TEXT, RuleContext
from runs.engine.rules.core import _blank, _errors, _null_where, as_text
from runs.engine.rules.text import _phone_format


def reference(values: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """The rule as it was defined with pandas' string methods (RE2 regexes)."""
    text = as_text(values)
    digits = text.str.replace("[^0-9]", "", regex=True)
    with_country = digits.str.fullmatch("1[0-9]{10}").fillna(False).to_numpy(dtype=bool)
    if with_country.any():
        digits = digits.mask(with_country, digits.str.slice(1))
    blank = _blank(text.str.strip())
    ok = digits.str.fullmatch("[0-9]{10}").fillna(False).to_numpy(dtype=bool)
    formatted = digits.str.replace("([0-9]{3})([0-9]{3})([0-9]{4})", r"(\1) \2-\3", regex=True)
    bad = ~ok & ~blank
    out = _null_where(formatted.mask(bad, text) if bad.any() else formatted, blank)
    errors = _errors(text, bad, "invalid phone number ", " (need 10 digits, optional leading 1)")
    return out, errors


PIECES = ["1", "555", "0199", "+1 ", "(", ") ", "-", ".", " ", "\t", "ext 5", "٣", "１", "é", "x"]


@st.composite
def phones(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=8))
    return "".join(pieces)


def _plain(series: pd.Series | None) -> list | None:
    return None if series is None else [None if pd.isna(v) else v for v in series.tolist()]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(phones() | st.none() | st.sampled_from(["", "  ", "\u2003"]), max_size=25))
def test_phone_format_is_the_regex_definition_for_any_text(texts):
    values = pd.Series(texts, dtype=TEXT)
    got = _phone_format(values, {}, RuleContext())
    out, errors = reference(values)
    assert _plain(got.values) == _plain(out)
    assert _plain(got.errors) == _plain(errors)


def test_phone_format_reads_a_sliced_column_from_its_own_offset():
    values = pd.Series(["x", "1 555 010 0199", "5550100199", None, "12"], dtype=TEXT)
    part = values.iloc[1:]
    got = _phone_format(part, {}, RuleContext())
    assert _plain(got.values) == ["(555) 010-0199", "(555) 010-0199", None, "12"]
    assert list(got.values.index) == [1, 2, 3, 4]
    assert np.flatnonzero(got.errors.notna().to_numpy()).tolist() == [3]
