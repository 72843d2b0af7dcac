"""Rules' column work moved from pandas' string methods (and Python loops) to Arrow's kernels
and numpy (issue 20: the workers' CPU in the transform): each gives what the definition it
replaced gives — kept here as the reference — for any value, sliced arrays included."""

from __future__ import annotations

import re
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs.engine.rules import TEXT, RuleContext, to_python
from runs.engine.rules.core import (
    _EMAIL,
    _MSG_VALUE_CHARS,
    _WS,
    _WS_RUN,
    _arrow,
    _blank,
    _errors,
    _may_have_ws_run,
    _null_where,
    as_text,
)
from runs.engine.rules.identity import _key_texts, uuid5_texts
from runs.engine.rules.text import _email, _truncate

SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# whitespace of every kind the rules name, and characters around it that are not whitespace
ODD = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2003"]
ODD += ["\u3000", "\u2028", "\u200b", "é", "ß", "İ", "K", "@", ".", "..", "-", "'", "a", "Z", "0"]


def piece_text(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(ODD) | st.text(max_size=3), max_size=max_size).map("".join)


def texts(max_size: int = 25) -> st.SearchStrategy[list[str | None]]:
    return st.lists(piece_text() | st.none(), max_size=max_size)


def series(values: list[str | None], lead: list[str | None]) -> pd.Series:
    """``values`` as a TEXT Series; with ``lead``, a slice of a longer one (Arrow offset)."""
    whole = pd.Series([*lead, *values], dtype=TEXT)
    out = whole.iloc[len(lead) :]
    out.index = range(7, 7 + len(values))
    return out


def plain(values: pd.Series) -> list[str | None]:
    return _arrow(values).to_pylist()


def errors_reference(values: pd.Series, mask: np.ndarray, prefix: str, suffix: str = ""):
    """_errors as it was defined with pandas' string methods."""
    if not mask.any():
        return None
    shown = as_text(values)[mask].fillna("").str.slice(0, _MSG_VALUE_CHARS)
    out = np.full(len(values), None, dtype=object)
    out[mask] = (prefix + "'" + shown + "'" + suffix).to_numpy(dtype=object)
    return pd.Series(out, index=values.index, dtype=object)


@SLOW
@given(
    st.lists(
        st.tuples(piece_text(40) | st.text(min_size=75, max_size=90) | st.none(), st.booleans())
    ),
    texts(3),
    st.text(max_size=5),
    st.text(max_size=5),
)
def test_errors_are_the_pandas_definition(rows, lead, prefix, suffix):
    values = series([v for v, _ in rows], lead)
    mask = np.array([m for _, m in rows], dtype=bool)
    got, want = (
        _errors(values, mask, prefix, suffix),
        errors_reference(values, mask, prefix, suffix),
    )
    if want is None:
        assert got is None
        return
    assert got.tolist() == want.tolist()
    assert list(got.index) == list(values.index)
    assert got.dtype == object


def email_reference(values: pd.Series) -> tuple[list, list | None]:
    """email as it was defined with pandas' string methods."""
    raw = as_text(values)
    text = raw.str.strip().str.lower()
    blank = _blank(text)
    ok = text.str.fullmatch(_EMAIL).fillna(False).to_numpy(dtype=bool)
    ok &= ~text.str.contains("..", regex=False).fillna(False).to_numpy(dtype=bool)
    errors = errors_reference(raw, ~ok & ~blank, "invalid e-mail address ")
    return plain(_null_where(text, blank)), None if errors is None else errors.tolist()


MAILS = st.builds(
    lambda a, b, c, d: f"{a}{b}@{c}.{d}",
    piece_text(4),
    st.sampled_from(["x", "A.b", "a..b", "Ünï", " "]),
    st.sampled_from(["ex", "ex-a", "ex.co", "ÉX", "a..b", ""]),
    st.sampled_from(["com", "c", "CO ", "de\n", "ü", "com."]),
)


@SLOW
@given(st.lists(MAILS | piece_text() | st.none(), max_size=25), texts(3))
def test_email_is_the_pandas_definition(values, lead):
    got = _email(series(values, lead), {}, RuleContext())
    want_values, want_errors = email_reference(series(values, lead))
    assert plain(got.values) == want_values
    assert (None if got.errors is None else got.errors.tolist()) == want_errors
    assert got.values.dtype == TEXT


@SLOW
@given(
    texts(),
    texts(3),
    st.integers(1, 6),
    st.sampled_from(["truncate", "fail"]),
)
def test_truncate_is_the_pandas_definition(values, lead, length, on_overflow):
    text = series(values, lead)
    got = _truncate(text, {"length": length, "on_overflow": on_overflow}, RuleContext())
    if on_overflow == "fail":
        over = (text.str.len().fillna(0) > length).to_numpy(dtype=bool)
        want = errors_reference(text, over, "", f" is longer than {length} characters")
        assert plain(got.values) == plain(text)
        assert (None if got.errors is None else got.errors.tolist()) == (
            None if want is None else want.tolist()
        )
    else:
        assert got.errors is None
        assert plain(got.values) == plain(text.str.slice(0, length))
    assert list(got.values.index) == list(text.index)


@SLOW
@given(texts(), texts(3))
def test_the_whitespace_prefilter_keeps_every_row_re2_matches(values, lead):
    arr = _arrow(series(values, lead))
    flagged = _may_have_ws_run(arr)
    for value, flag in zip(values, flagged.tolist(), strict=True):
        if value is not None and re.search(_WS_RUN, value):
            assert flag, value


def test_the_whitespace_prefilter_keeps_each_whitespace_character():
    chars = [chr(c) for c in range(0x3001) if re.fullmatch(_WS, chr(c))]
    assert len(chars) == 29
    values = [f"a{c}b" for c in chars] + [f"a{c}{c}b" for c in chars]
    flagged = _may_have_ws_run(_arrow(pd.Series(values, dtype=TEXT)))
    assert flagged.tolist() == [c != " " for c in chars] + [True] * len(chars)


def test_the_whitespace_prefilter_passes_plain_text_by():
    arr = _arrow(
        pd.Series(["Acme Corp", "a b c", None, "", "x\ty", "a  b", "caf\u00e9"], dtype=TEXT)
    )
    assert _may_have_ws_run(arr).tolist() == [False, False, False, False, True, True, True]


@SLOW
@given(st.lists(st.none() | piece_text() | st.integers() | st.just(pd.NA), max_size=20))
def test_source_key_texts_are_to_pythons(keys):
    values = pd.Series(keys, dtype=object)
    assert _key_texts(values) == to_python(values).tolist()


@SLOW
@given(st.lists(st.none() | st.text(max_size=8), max_size=20), st.text(max_size=5))
def test_uuid5_texts_are_the_stdlibs(names, scope):
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, scope)
    want = [None if n is None else str(uuid.uuid5(namespace, n)) for n in names]
    got = uuid5_texts(namespace, names)
    assert got.to_pylist() == want
    assert got.type == pa.large_string()


@SLOW
@given(
    st.lists(
        st.tuples(st.none() | st.text(max_size=6), st.none() | st.integers(-5, 99)),
        min_size=1,
        max_size=15,
    ),
    st.booleans(),
)
def test_source_key_text_is_row_by_row_so_the_ends_need_only_two_rows(rows, composite):
    """A first run's row state keeps the range's first and last source key: computed from the
    frame's first and last row alone (``unchanged.extract_changed``), they are the whole
    frame's keys' ends, for single and composite keys, nulls and odd labels."""
    from runs.engine.transform import source_key_text

    frame = pd.DataFrame(
        {
            "k": pd.Series([r[0] for r in rows], dtype=object).astype(TEXT),
            "n": pd.Series([r[1] for r in rows], dtype=object),
        },
        index=pd.Index([7 * i + 3 for i in range(len(rows))]),
    )
    cols = ["k", "n"] if composite else ["k"]
    whole = source_key_text(frame, cols).tolist()
    ends = source_key_text(frame.iloc[[0, -1]], cols).tolist()
    assert ends == [whole[0], whole[-1]]
