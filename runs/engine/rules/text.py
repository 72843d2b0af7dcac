"""Text rules: copy, whitespace and case, joining and splitting, regular expressions, phone and
e-mail formats, truncation, defaults and constants."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runs.engine.safe_regex import regex_match_column, regex_sub

from .casing import title_series
from .core import (
    _EMAIL,
    _WS_RUN,
    TEXT,
    Param,
    RuleContext,
    RuleType,
    StepResult,
    _arrow,
    _blank,
    _blank_to_null,
    _errors,
    _frame,
    _may_have_ws_run,
    _nulls,
    _series,
    _text_bytes,
    as_text,
    rule_type,
)


def _copy(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(as_text(values))


def _trim(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    """Arrow's kernels directly (pandas' ``str.replace``/``str.strip`` call the same ones,
    with ~1.5 ms of overhead per 20,000 values); the whitespace runs are replaced only in the
    values that have one (finding them costs about half of rewriting every value)."""
    out = _arrow(values)
    if params["collapse_inner"]:  # runs of whitespace (tabs, newlines...) inside -> one space
        # RE2 costs ~0.1 µs a value: asked only of the values whose bytes may hold a run
        maybe = np.flatnonzero(_may_have_ws_run(out))
        some = out.take(pa.array(maybe, pa.int64()))
        hit = pc.match_substring_regex(some, _WS_RUN).fill_null(False)
        hit = hit.to_numpy(zero_copy_only=False)
        if hit.any():
            mask = np.zeros(len(out), dtype=bool)
            mask[maybe[hit]] = True  # replace_with_mask fills the masked rows in row order
            some = pc.replace_substring_regex(some.filter(pa.array(hit)), _WS_RUN, " ")
            out = pc.replace_with_mask(out, pa.array(mask), some)
    out = pc.utf8_trim_whitespace(out)
    if params["empty_to_null"]:
        out = _blank_to_null(out)
    return StepResult(_series(out, values.index))


def _upper(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(as_text(values).str.upper())


def _lower(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(as_text(values).str.lower())


def _title(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(title_series(values))


def _concat(values: pd.Series | pd.DataFrame, params: dict, ctx: RuleContext) -> StepResult:
    frame = _frame(values)
    sep = pa.scalar(params["separator"], pa.large_string())
    result: pa.Array | None = None
    for col in frame.columns:
        part = _arrow(frame[col])
        if params["strip"]:
            part = pc.utf8_trim_whitespace(part)
        part = _blank_to_null(part)
        if result is None:
            result = part
            continue
        # Pairwise join: pyarrow's null_handling="skip" drops all-null rows (pyarrow 26).
        joined = pc.binary_join_element_wise(result, part, sep)
        result = pc.coalesce(joined, result, part)
    if result is None:
        return StepResult(pd.Series(pd.NA, index=frame.index, dtype=TEXT))
    return StepResult(_series(result, frame.index))


def _coalesce(values: pd.Series | pd.DataFrame, params: dict, ctx: RuleContext) -> StepResult:
    frame = _frame(values)
    parts = [_blank_to_null(_arrow(frame[col])) for col in frame.columns]
    if not parts:
        return StepResult(pd.Series(pd.NA, index=frame.index, dtype=TEXT))
    merged = pc.coalesce(*parts) if len(parts) > 1 else parts[0]
    return StepResult(_series(merged, frame.index))


def _split(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    arr = _arrow(values)
    lists = pc.split_pattern(arr, params["separator"])
    offsets = np.asarray(lists.offsets)
    lengths = np.diff(offsets)
    index = params["index"]
    pos = offsets[:-1] + index if index >= 0 else offsets[1:] + index
    ok = (lengths > index) if index >= 0 else (lengths >= -index)
    ok &= ~_nulls(values)
    child = lists.values
    picked = child.take(pa.array(np.where(ok, pos, 0) if len(child) else np.zeros(0, int)))
    if len(child) == 0:
        picked = pa.nulls(len(arr), pa.large_string())
    out = pc.if_else(pa.array(ok), picked, pa.scalar(None, pa.large_string()))
    if params["strip"]:
        out = pc.utf8_trim_whitespace(out)
    return StepResult(_series(_blank_to_null(out), values.index))


def _py_text(text: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else v for v in text.tolist()]


def _regex_replace(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    out = regex_sub(_py_text(text), params["pattern"], params["replacement"])  # RE2: linear
    return StepResult(pd.Series(out, index=text.index, dtype=object).astype(TEXT))


def _regex_validate(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    # the whole column at once on Arrow's RE2 (linear time), no Python call per value
    hit = regex_match_column(_arrow(text), params["pattern"], full=params["full_match"])
    bad = ~hit & ~_blank(text)
    message = params["message"] or "does not match the required pattern"
    return StepResult(text, _errors(text, bad, "", f" {message}"))


def _truncate(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    length = params["length"]
    # characters, as pandas' str.len and str.slice count them (Arrow's kernels, called directly)
    if params["on_overflow"] == "fail":
        over = pc.greater(pc.utf8_length(_arrow(text)), length).fill_null(False)
        over = over.to_numpy(zero_copy_only=False)
        return StepResult(text, _errors(text, over, "", f" is longer than {length} characters"))
    # one slice of every value: finding the longer ones first costs as much again
    return StepResult(_series(pc.utf8_slice_codeunits(_arrow(text), 0, length), text.index))


def _default_if_null(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    missing = _blank(text) if params["blank_is_null"] else _nulls(text)
    if not missing.any():
        return StepResult(text)
    return StepResult(text.mask(missing, params["value"]))


def _constant(values: pd.Series | pd.DataFrame, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(pd.Series(params["value"], index=values.index, dtype=TEXT))


_PHONE = np.frombuffer(b"(000) 000-0000", dtype=np.uint8)
_PHONE_DIGITS = np.array([1, 2, 3, 6, 7, 8, 10, 11, 12, 13])  # where the ten digits go


def _ascii_digits(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the ASCII digits of all values, concatenated; where each value's digits start in
    them; how many each value has) of a large_string array: what removing ``[^0-9]`` from
    each value leaves, without building a string (in UTF-8 an ASCII digit is one byte, and
    no byte of a longer character is one). Pure."""
    offsets, data = _text_bytes(arr)
    is_digit = (data >= ord("0")) & (data <= ord("9"))
    seen = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(is_digit, out=seen[1:])
    start = seen[offsets[:-1]]
    return data[is_digit], start, seen[offsets[1:]] - start


def _phone_format(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    """Ten ASCII digits (eleven with a leading 1, dropped) as (XXX) XXX-XXXX, found and
    written with numpy over the values' bytes; other values fail as they are (blank: null)."""
    text = as_text(values)
    arr = _arrow(text)
    digits, start, count = _ascii_digits(arr)
    first = digits[np.minimum(start, len(digits) - 1)] if len(digits) else np.zeros(len(arr))
    country = (count == 11) & (first == ord("1"))
    ok = ((count == 10) | country) & ~_nulls(text)
    blank = _blank(_series(pc.utf8_trim_whitespace(arr), text.index))
    bad = ~ok & ~blank
    at = np.flatnonzero(ok)
    chars = np.tile(_PHONE, (len(at), 1))
    chars[:, _PHONE_DIGITS] = digits[(start[at] + country[at])[:, None] + np.arange(10)]
    offsets = np.arange(0, len(_PHONE) * (len(at) + 1), len(_PHONE), dtype=np.int64)
    formatted = pa.LargeStringArray.from_buffers(
        len(at), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())
    )
    out = pc.replace_with_mask(arr, pa.array(ok), formatted) if len(at) else arr
    errors = _errors(text, bad, "invalid phone number ", " (need 10 digits, optional leading 1)")
    out = pc.if_else(pa.array(blank), pa.scalar(None, pa.large_string()), out)  # blank: null
    return StepResult(_series(out, text.index), errors)


# What pandas' str.fullmatch(_EMAIL) hands Arrow's RE2 for a column (``$``: the end only)
_EMAIL_FULL = f"^({_EMAIL})$"


def _email(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    """Trimmed, lower-cased, checked: the kernels pandas' strip, lower, fullmatch and
    contains call, called directly (~3 ms less per 20,000 values)."""
    raw = as_text(values)
    arr = pc.utf8_lower(pc.utf8_trim_whitespace(_arrow(raw)))
    blank = pc.fill_null(pc.equal(arr, ""), True).to_numpy(zero_copy_only=False)
    ok = pc.and_not(
        pc.match_substring_regex(arr, _EMAIL_FULL), pc.match_substring(arr, "..")
    ).fill_null(False)
    out = pc.if_else(pa.array(blank), pa.scalar(None, pa.large_string()), arr)
    bad = ~ok.to_numpy(zero_copy_only=False) & ~blank
    return StepResult(_series(out, raw.index), _errors(raw, bad, "invalid e-mail address "))


_P_SEPARATOR = Param("separator", "str", default=" ", help="Text placed between the parts.")


_P_STRIP = Param("strip", "bool", default=True, help="Trim whitespace around each part first.")


_P_PATTERN = Param("pattern", "regex", required=True, help="Regular expression (RE2 syntax).")


# --------------------------------------------------------------------------- registered here

_NULLS = {
    "copy": "Null and empty strings pass through unchanged.",
    "trim": "Null stays null; values empty after trimming become null (unless disabled).",
    "upper": "Null stays null; empty strings stay empty.",
    "lower": "Null stays null; empty strings stay empty.",
    "title": "Null stays null; empty strings stay empty.",
    "concat": "Null and empty parts are skipped; null when every part is empty.",
    "coalesce": "Null and empty values are skipped; null when every column is empty.",
    "split": "Null and empty values become null, as do parts missing at that position.",
    "regex_replace": "Null stays null; empty strings are matched like any other value.",
    "regex_validate": "Null and empty values pass (use 'required' to demand a value).",
    "phone_format": "Null, empty and whitespace-only values become null and pass.",
    "email": "Null, empty and whitespace-only values become null and pass.",
    "truncate": "Null stays null.",
    "default_if_null": "Replaces null (and, by default, empty) values.",
    "constant": "Ignores the input.",
}
_rule = partial(rule_type, _NULLS)

RULES: tuple[RuleType, ...] = (
    _rule("copy", "Copy", "Copies the value unchanged.", _copy),
    _rule(
        "trim",
        "Trim / clean whitespace",
        "Strips leading and trailing whitespace; inner whitespace is kept unless "
        "'collapse_inner' turns each inner run of whitespace (tabs, newlines too) into one space.",
        _trim,
        Param("empty_to_null", "bool", default=True, help="Turn values left empty into null."),
        Param(
            "collapse_inner",
            "bool",
            default=False,
            help="Also turn each run of whitespace inside the value (tabs, newlines) into one "
            "space.",
        ),
    ),
    _rule("upper", "Upper case", "Converts the value to UPPER CASE.", _upper),
    _rule("lower", "Lower case", "Converts the value to lower case.", _lower),
    _rule(
        "title",
        "Title case",
        "Capitalises the first letter of each word (ACME CORP → Acme Corp) but keeps LLC, LTD, "
        "PLC, GmbH, AG, USA, UK, EU, IBM and similar tokens as written (ACME LLC → Acme LLC) "
        "and lower-cases 's/'t after an apostrophe (McDonald's). Other capitals are not kept "
        "(Ann LEE → Ann Lee).",
        _title,
    ),
    _rule(
        "concat",
        "Concatenate",
        "Joins several source columns with a separator, skipping null and empty parts.",
        _concat,
        _P_SEPARATOR,
        _P_STRIP,
        accepts_frame=True,
    ),
    _rule(
        "coalesce",
        "Coalesce",
        "Takes the first non-empty value among several source columns.",
        _coalesce,
        accepts_frame=True,
    ),
    _rule(
        "split",
        "Split",
        "Splits the value on a separator and keeps the part at a position.",
        _split,
        Param("separator", "str", default=",", help="Literal text to split on."),
        Param(
            "index", "int", default=0, help="Position of the part to keep: 0 = first, -1 = last."
        ),
        _P_STRIP,
    ),
    _rule(
        "regex_replace",
        "Regex replace",
        "Replaces every match of a regular expression with a replacement text.",
        _regex_replace,
        _P_PATTERN,
        Param("replacement", "str", default="", help=r"Replacement; \1 refers to group 1."),
    ),
    _rule(
        "regex_validate",
        "Regex validate",
        "Fails rows whose value does not match a regular expression.",
        _regex_validate,
        _P_PATTERN,
        Param(
            "full_match",
            "bool",
            default=True,
            help="The whole value must match (otherwise a match anywhere is enough).",
        ),
        Param("message", "str", default="", help="Error message shown for failing rows."),
        category="invalid_format",
    ),
    _rule(
        "phone_format",
        "Phone format",
        "Formats phone numbers as (XXX) XXX-XXXX, accepting a leading country code 1.",
        _phone_format,
        category="invalid_format",
    ),
    _rule(
        "email",
        "E-mail",
        "Trims and lower-cases e-mail addresses and fails those that are not valid.",
        _email,
        category="invalid_format",
    ),
    _rule(
        "truncate",
        "Truncate",
        "Cuts values to a maximum number of characters.",
        _truncate,
        Param("length", "int", required=True, min_value=1, help="Maximum length."),
        Param(
            "on_overflow",
            "choice",
            default="truncate",
            choices=("truncate", "fail"),
            help="Cut longer values, or fail their rows.",
        ),
        category="too_long",
    ),
    _rule(
        "default_if_null",
        "Default when null",
        "Replaces null values with a fixed value.",
        _default_if_null,
        Param("value", "str", required=True, help="Value used for null rows."),
        Param("blank_is_null", "bool", default=True, help="Treat empty strings as null too."),
    ),
    _rule(
        "constant",
        "Constant",
        "Sets every row to the same fixed value.",
        _constant,
        Param("value", "str", required=True, help="The value."),
    ),
)
