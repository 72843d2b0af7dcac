"""parse_date's "possible" pre-filter (the ASCII texts pandas might parse with a format) is
written with ASCII classes: RE2 compiled the Unicode ones (\\pN, \\pL, [^\\pN\\pP\\pS]) in up
to ~1.7 ms, once per format per call (issue 20: ~4 ms of a 10,000-row chunk). On ASCII texts
it answers exactly as the Unicode-class definition it replaced (kept here as the reference);
non-ASCII texts go to pandas whatever it answers."""

from __future__ import annotations

import re
import string

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.rules.dates import _FORMAT_PIECE, _fast_format, _re2_literal

FORMATS = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%b %d %Y",
    "%d/%m/%y",
    "%Y%m%d",
    "%H:%M %d-%m-%Y",
    "%Y-%m-%d\t%H",
    "%y-%m-%d %H:%M:%S",
    "%d %b, %Y",
]
_LOOSE = r"[-+]?[\pN ]+"
_REFERENCE_LOOSE = {d: _LOOSE for d in "YymdHMS"} | {"b": r"\pL+"}


def reference_possible(fmt: str) -> str:
    """The pre-filter as it was defined, with Unicode classes."""
    out = ["^"]
    for directive, space, char in _FORMAT_PIECE.findall(fmt):
        if directive:
            out.append(_REFERENCE_LOOSE[directive])
        elif space:
            out.append(r"[^\pN\pP\pS]+")
        else:
            out.append(r"\pL" if char.isalpha() else _re2_literal(char))
    return "".join(out) + "$"


def _matches(texts: list[str], pattern: str) -> list[bool]:
    arr = pa.array(texts, pa.large_string())
    return pc.match_substring_regex(arr, pattern).to_pylist()


ASCII = "".join(map(chr, range(128)))
PIECES = ["2018", "07", "3", "Mar", "mar", "-", "+", " ", "  ", "\t", ":", "/", ".", "T", ",", "x"]


@st.composite
def ascii_dates(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.sampled_from(PIECES) | st.text(ASCII, max_size=3), max_size=10))
    return "".join(pieces)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(ascii_dates(), min_size=1, max_size=40))
def test_ascii_prefilter_answers_as_the_unicode_classes_on_ascii(texts):
    for fmt in FORMATS:
        fast = _fast_format(fmt)
        assert fast is not None
        assert _matches(texts, fast.possible) == _matches(texts, reference_possible(fmt)), fmt


def test_every_ascii_character_is_classed_as_the_unicode_classes_class_it():
    """Each ASCII character, in every position of every format, alone and between digits."""
    texts = [c for c in ASCII] + [f"1{c}2" for c in ASCII] + [f"Mar{c}05{c}2018" for c in ASCII]
    texts += [re.sub(r"%.", "1", f).replace("1", c) for f in FORMATS for c in string.printable]
    for fmt in FORMATS:
        assert _matches(texts, _fast_format(fmt).possible) == _matches(
            texts, reference_possible(fmt)
        ), fmt
