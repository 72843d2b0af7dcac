"""Issue 20: regex_validate and the format checks match a whole Arrow column at once on Arrow's
RE2 instead of calling google-re2 once per value. The column path must answer exactly as the
per-value path (the reference) on hostile values and patterns; no Python call per value."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from runs.engine import safe_regex
from runs.engine.rules import REGISTRY, RuleContext, validate_params
from runs.engine.rules import text as text_rules
from runs.engine.safe_regex import RegexRefused, regex_fullmatch, regex_match_column, regex_search

VALUES = [
    None,
    "",
    "12345",
    "12345-6789",
    "12345\n",  # Python's re `$` matches before a final newline; RE2's must not
    "\n12345",
    "12345\x00",
    "\x00",
    "1234\x005",
    "１２３４５",  # full-width digits: not [0-9]
    "١٢٣٤٥",  # Arabic-Indic digits
    "abc",
    "ABC",
    "aBc\nabc",
    "x\ny",
    "é",
    "e\u0301",  # e + combining acute
    "ǅ",
    "😀",
    "a😀b",
    " 12345 ",
    "\u2028",
    "a" * 64 + "b",
    "\\Q",
    ")",
    "(?:",
]
PATTERNS = [
    r"[0-9]{5}(-[0-9]{4})?",
    r"^abc$",
    r"abc|x",  # top-level alternation: the anchors must wrap it whole
    r"(?i)abc",
    r"(?m)^abc$",
    r"(?s).+",
    r".+",
    r".*",
    r"",
    r"\d+",
    r"\w+",
    r"\pL+",
    r"\pN+",
    r"[^\x00]*",
    r"\x00",
    r"\n",
    r"$",
    r"^",
    r"\Qabc\E",
    r"\Q)",  # a quote with no \E: the anchors' suffix must not end up quoted
    r"(a|aa)+$",
    r"😀",
    r"e\x{301}",
    r"\A12345\z",
]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("full", [True, False], ids=["fullmatch", "search"])
def test_column_path_answers_as_the_per_value_path(pattern: str, full: bool) -> None:
    reference = (regex_fullmatch if full else regex_search)(VALUES, pattern)
    column = regex_match_column(pa.array(VALUES, pa.large_string()), pattern, full=full)
    assert column.dtype == bool
    assert column.tolist() == reference.tolist(), [
        v for v, a, b in zip(VALUES, column, reference, strict=True) if a != b
    ]


@pytest.mark.parametrize("pattern", ["(?=a)a", r"(a)\1", "(unclosed", "a" * 2_001])
def test_column_path_refuses_what_the_per_value_path_refuses(pattern: str) -> None:
    with pytest.raises(RegexRefused):
        regex_fullmatch(["a"], pattern)
    with pytest.raises(RegexRefused):
        regex_match_column(pa.array(["a"]), pattern, full=True)


def test_regex_validate_makes_no_python_call_per_value(monkeypatch) -> None:
    """The rule (and so a run and its report) no longer walks the values in Python."""

    def per_value(*args, **kwargs):
        raise AssertionError("per-value RE2 path used")

    for module in (safe_regex, text_rules):  # wherever the rule may look the names up
        monkeypatch.setattr(module, "regex_fullmatch", per_value, raising=False)
        monkeypatch.setattr(module, "regex_search", per_value, raising=False)
    values = pd.Series(["12345", "1234", None, "", "12345\n", "12345-6789"], dtype=object)
    params = validate_params("regex_validate", {"pattern": r"[0-9]{5}(-[0-9]{4})?"})
    out = REGISTRY["regex_validate"].fn(values, params, RuleContext())
    assert out.errors is not None
    assert out.errors.notna().tolist() == [False, True, False, False, True, False]
