"""The title rule in Arrow for the values its word rules touch: in a plain ASCII value, a known
token (LLC, GmbH…) written as listed and a contraction after an apostrophe kept lower by Arrow
kernels, not by Python one value at a time (the demo's names: ~30 % carry one; 1.4 s of CPU
per 1 M names). Python keeps only the values Arrow cannot be trusted with — a non-ASCII
character (Unicode title case), whitespace other than the space, an apostrophe next to a
digit or an underscore — and the result is the same as ``title_value`` (``str.title`` and the
word rules) for every value."""

from __future__ import annotations

import string

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs.engine.rules import TEXT
from runs.engine.rules.casing import KNOWN_TOKENS, python_rows, title_series, title_value

WORDS = [
    *KNOWN_TOKENS.values(),
    *(t.lower() for t in KNOWN_TOKENS),
    "llcx",
    "xllc",
    "Llc.",
    "(usa)",
    "'uk'",
    "gmbh&co",
    "ibm/lotus",
    "acme",
    "O'NEIL",
    "DON'T",
    "it’s",
    "müller",
    "ǆungla",
    "ß",
    "ﬁne",
    "3rd",
    "a1b",
    "_x",
    "",
]
SEPARATORS = [" ", "  ", "\t", "\n", "\x1f", "\x85", "\u00a0", "\u2003", "-", ".", ","]


@st.composite
def values(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(WORDS) | st.text(max_size=4), max_size=6))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(parts), max_size=len(parts)))
    return "".join(p + s for p, s in zip(parts, seps, strict=True))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values() | st.none(), max_size=30))
def test_title_series_is_title_value_of_every_value(texts):
    out = title_series(pd.Series(texts, dtype=TEXT))
    got = [None if v is pd.NA else v for v in out.tolist()]
    assert got == [None if v is None else title_value(v) for v in texts]


ASCII = string.ascii_letters + string.digits + string.punctuation + " "


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(
            st.sampled_from([w for w in WORDS if w.isascii()]) | st.text(ASCII, max_size=5),
            max_size=6,
        ).map(" ".join),
        max_size=30,
    )
)
def test_plain_ascii_values_with_tokens_are_titled_by_arrow_as_by_python(texts):
    series = pd.Series(texts, dtype=TEXT)
    out = title_series(series).tolist()
    assert out == [title_value(v) for v in texts]


def test_only_values_arrow_cannot_title_go_to_python():
    texts = [
        "acme llc",  # a token, plain ASCII: Arrow
        "Blue Sun Ltd. (UK)",
        "GEKKO  FOODS  LLC",  # spaces only, however many
        "plain name",  # no word rule can change it: Arrow's title
        "O'MALLEY'S LLC",  # contractions after a letter: Arrow too
        "josé gmbh",  # non-ASCII: Unicode title case
        "acme\tllc",  # whitespace other than the space
        "R2'S LTD",  # an apostrophe after a digit: not after a letter, but RE2's \b says so
        "IT'S_2 LLC",  # a letter run ended by an underscore: idem
        None,
    ]
    mask = python_rows(pd.Series(texts, dtype=TEXT))
    assert mask.tolist() == [False, False, False, False, False, True, True, True, True, False]
    assert title_series(pd.Series(texts[:5], dtype=TEXT)).tolist() == [
        "Acme LLC",
        "Blue Sun LTD. (UK)",  # LTD is listed (as the legal form's abbreviation)
        "Gekko  Foods  LLC",
        "Plain Name",
        "O'Malley's LLC",
    ]
