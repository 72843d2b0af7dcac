"""Transformation rule registry: every rule type, its parameter schema and its vectorised function.

The browser form, the YAML format, the API and the plan document all derive from ``REGISTRY``.
Rules take text (a Series, or a DataFrame for ``accepts_frame`` rules) and return text: a pandas
``string[pyarrow]`` Series (``TEXT``) with ``<NA>`` for null. ``transform.transform_frame`` turns
the final values back into ``object`` dtype holding ``str`` / ``None``.

Performance notes: string work runs in pyarrow kernels (RE2). Patterns avoid ``\\s``, ``\\d``,
``\\w``, ``$`` and inline flags, because pandas then falls back to Python's ``re`` row by row.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runs.engine.safe_regex import (
    RegexRefused,
    regex_compile,
    regex_fullmatch,
    regex_search,
    regex_sub,
)
from runs.engine.snapshot import LookupSpec

TEXT = pd.StringDtype("pyarrow")
# Explicit whitespace class: RE2's \s misses some characters and pandas falls back to `re` for it.
# The same characters strip (Arrow's utf8_trim_whitespace, Python's str.strip) removes: NEL
# and the separators U+001C-U+001F too (the oracle test found them left inside).
_WS = "[ \t\n\r\f\v\x1c-\x1f\x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# Runs of 2+ whitespace, or one non-space whitespace: leaves single spaces alone (2x faster).
_WS_RUN = _WS + "{2,}|" + _WS.replace(" ", "", 1)
_EMAIL = (
    "[a-z0-9\u00c0-\uffff!#%&'*+/=?^_`{|}~.-]+@[a-z0-9\u00c0-\uffff-]+(\\.[a-z0-9\u00c0-\uffff-]+)*"
    "\\.[a-z\u00c0-\uffff]{2,}"
)
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_MSG_VALUE_CHARS = 80
_EMPTY = pa.scalar("", pa.large_string())
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

PARAM_TYPES = ("str", "int", "bool", "choice", "list", "regex", "lookup", "entity", "column")
# Every category a failed record can have: the rules' own, the target-type checks before the
# INSERT (required_missing, too_long, type_cast) and the batch's read-back (coerced_by_target:
# a row the target stored otherwise than meant, connectors.base.COERCED).
FAILURE_CATEGORIES = (
    "invalid_format",
    "invalid_date",
    "lookup_miss",
    "required_missing",
    "too_long",
    "type_cast",
    "reference_missing",
    "invalid_value",
    "coerced_by_target",
)


class RuleParamError(ValueError):
    """A rule step's parameters are invalid (unknown rule, missing/wrong parameter, bad regex)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class Param:
    """One declared parameter of a rule type (drives the browser form and validation)."""

    name: str
    type: str  # one of PARAM_TYPES
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""
    min_value: int | None = None  # for "int"
    max_value: int | None = None  # for "int"


@dataclass
class RuleContext:
    """What a rule may read besides its input values."""

    lookups: Mapping[str, LookupSpec] = field(default_factory=dict)
    keymaps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source_keys: pd.Series | None = None  # aligned with the values' index
    namespace: str = ""


@dataclass
class StepResult:
    """A rule's output: values (same index as the input) and per-row error messages or None."""

    values: pd.Series
    errors: pd.Series | None = None


RuleFn = Callable[[Any, dict, RuleContext], StepResult]


@dataclass(frozen=True)
class RuleType:
    """A registered rule: name, labels, parameter schema, vectorised function, failure category."""

    name: str
    label: str
    description: str
    params: tuple[Param, ...]
    fn: RuleFn
    accepts_frame: bool = False
    category: str = "invalid_value"
    null_handling: str = ""  # how null / empty input is treated (shown in forms and docs)


# --------------------------------------------------------------------------- text helpers


def as_text(values: pd.Series | Any) -> pd.Series:
    """The Series as ``TEXT`` (no copy when it already is); non-str values become ``str(v)``."""
    if isinstance(values, pd.Series) and values.dtype == TEXT:
        return values
    return pd.Series(values).astype(TEXT)


def to_python(values: pd.Series) -> pd.Series:
    """The Series as ``object`` dtype holding ``str`` or ``None`` (the engine's wire format)."""
    text = as_text(values)
    return pd.Series(text.to_numpy(dtype=object, na_value=None), index=values.index, dtype=object)


def _arrow(values: pd.Series) -> pa.Array:
    arr = pa.array(as_text(values).array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def _series(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(TEXT.__from_arrow__(arr), index=index)


def _blank(values: pd.Series) -> np.ndarray:
    """Mask of rows that are null or the empty string."""
    return (as_text(values).fillna("") == "").to_numpy(dtype=bool)


def _nulls(values: pd.Series) -> np.ndarray:
    return as_text(values).isna().to_numpy(dtype=bool)


def _null_where(values: pd.Series, mask: np.ndarray) -> pd.Series:
    if not mask.any():
        return values
    return values.mask(mask)


def _blank_to_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.large_string()), arr)


def _errors(values: pd.Series, mask: np.ndarray, prefix: str, suffix: str = "") -> pd.Series | None:
    """Error Series with ``prefix + 'value' + suffix`` on masked rows, None elsewhere."""
    if not mask.any():
        return None
    shown = as_text(values)[mask].fillna("").str.slice(0, _MSG_VALUE_CHARS)
    out = np.full(len(values), None, dtype=object)
    out[mask] = (prefix + "'" + shown + "'" + suffix).to_numpy(dtype=object)
    return pd.Series(out, index=values.index, dtype=object)


def _frame(values: pd.Series | pd.DataFrame) -> pd.DataFrame:
    return values.to_frame() if isinstance(values, pd.Series) else values


# --------------------------------------------------------------------------- simple rules


def _copy(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(as_text(values))


def _trim(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    out = as_text(values)
    if params["collapse_inner"]:  # runs of whitespace (tabs, newlines...) inside -> one space
        out = out.str.replace(_WS_RUN, " ", regex=True)
    out = out.str.strip()
    if params["empty_to_null"]:
        out = _null_where(out, _blank(out))
    return StepResult(out)


def _upper(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(as_text(values).str.upper())


def _lower(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(as_text(values).str.lower())


def _title(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    out = text.str.title()  # Arrow: the same as str.title on ASCII text
    # Arrow upper-cases a word's first letter where Unicode has a distinct title-case form
    # (ǆ -> Ǆ, not ǅ): non-ASCII values get Python's title case (found by the oracle test).
    wide = ~pc.string_is_ascii(_arrow(text)).fill_null(True).to_numpy(zero_copy_only=False)
    if wide.any():
        out = out.copy()
        out[wide] = [v.title() for v in text[wide].tolist()]
    return StepResult(out)


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
    match = regex_fullmatch if params["full_match"] else regex_search  # RE2: linear time
    hit = match(_py_text(text), params["pattern"])
    bad = ~hit & ~_blank(text)
    message = params["message"] or "does not match the required pattern"
    return StepResult(text, _errors(text, bad, "", f" {message}"))


def _truncate(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    length = params["length"]
    if params["on_overflow"] == "fail":
        over = (text.str.len().fillna(0) > length).to_numpy(dtype=bool)
        return StepResult(text, _errors(text, over, "", f" is longer than {length} characters"))
    return StepResult(text.str.slice(0, length))


def _default_if_null(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    missing = _blank(text) if params["blank_is_null"] else _nulls(text)
    if not missing.any():
        return StepResult(text)
    return StepResult(text.mask(missing, params["value"]))


def _constant(values: pd.Series | pd.DataFrame, params: dict, ctx: RuleContext) -> StepResult:
    return StepResult(pd.Series(params["value"], index=values.index, dtype=TEXT))


# --------------------------------------------------------------------------- lookups


def _map_through(
    text: pd.Series, keys: list[str], vals: list[str | None]
) -> tuple[pa.Array, np.ndarray]:
    """Mapped values (null where unmapped) and the found mask, via a pyarrow hash lookup."""
    arr = _arrow(text)
    key_arr = pa.array(keys, type=pa.large_string())
    idx = pc.index_in(arr, value_set=key_arr)
    mapped = pa.array(vals, type=pa.large_string()).take(idx)
    return mapped, np.asarray(idx.is_valid(), dtype=bool)


def _value_map(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    name = params["lookup"]
    if name not in ctx.lookups:
        raise RuleParamError("lookup", f"unknown lookup table {name!r}")
    lookup = ctx.lookups[name]
    text = as_text(values)
    probe = text.str.strip().str.lower() if params["ignore_case"] else text
    entries: dict[str, str | None] = {}
    for key, val in lookup.entries.items():
        entries.setdefault(key.strip().lower() if params["ignore_case"] else key, val)
    mapped, found = _map_through(probe, list(entries), list(entries.values()))
    out = _series(mapped, text.index)
    blank = _blank(text)
    missing, nullish = ~found & ~blank, ~found & blank
    if params["on_missing"] == "keep":
        out = out.mask(missing, text)
    elif params["on_missing"] == "default" and lookup.default is not None:
        out = out.mask(missing, lookup.default)
    if params["on_null"] == "default" and lookup.default is not None:
        out = out.mask(nullish, lookup.default)
    errors = None
    if params["on_missing"] == "fail":
        errors = _errors(text, missing, "no mapping for ", f" in lookup {name!r}")
    if params["on_null"] == "fail" and nullish.any():
        empty = np.where(_nulls(text), "null", "an empty value")
        texts = np.full(len(text), None, dtype=object)
        texts[nullish] = [f"{e} for lookup {name!r} (on_null: fail)" for e in empty[nullish]]
        if errors is not None:
            texts = np.where(nullish, texts, errors.to_numpy(dtype=object))
        errors = pd.Series(texts, index=text.index, dtype=object)
    return StepResult(out, errors)


def _reference_lookup(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    entity = params["entity"]
    keymap = ctx.keymaps.get(entity, {})
    text = as_text(values).str.strip()
    mapped, found = _map_through(text, list(keymap), list(keymap.values()))
    missing = ~found & ~_blank(text)
    errors = _errors(text, missing, f"no loaded {entity} row with source key ")
    return StepResult(_series(mapped, text.index), errors)


# --------------------------------------------------------------------------- formats


def _phone_format(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
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
    return StepResult(out, errors)


def _email(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    raw = as_text(values)
    text = raw.str.strip().str.lower()
    blank = _blank(text)
    ok = text.str.fullmatch(_EMAIL).fillna(False).to_numpy(dtype=bool)
    ok &= ~text.str.contains("..", regex=False).fillna(False).to_numpy(dtype=bool)
    out = _null_where(text, blank)
    return StepResult(out, _errors(raw, ~ok & ~blank, "invalid e-mail address "))


# Date formats in Arrow (C++) instead of pandas' per-value strptime (~5x faster), without
# changing what parses: per directive, (the zero-padded spelling, a pattern matching at least
# everything pandas accepts for it). Only formats made of these directives take the fast path.
_LOOSE = r"[-+]?[\pN ]+"  # signs, any Unicode digits, spaces: wider than pandas reads
_DIRECTIVES = {
    "Y": ("(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])", _LOOSE),  # no year 0
    "y": ("[0-9]{2}", _LOOSE),
    "m": ("(?:0[1-9]|1[0-2])", _LOOSE),
    "d": ("(?:0[1-9]|[12][0-9]|3[01])", _LOOSE),
    "H": ("(?:[01][0-9]|2[0-3])", _LOOSE),
    "M": ("[0-5][0-9]", _LOOSE),
    "S": ("[0-5][0-9]", _LOOSE),
    "b": ("(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)", r"\pL+"),
}
_WIDTH = {"Y": 4, "b": 3}  # characters of a directive's canonical spelling (others: 2)
_FORMAT_PIECE = re.compile(r"%(.)|(\s+)|(.)", re.S)


@dataclass(frozen=True)
class _FastFormat:
    canonical: str  # RE2: the format's zero-padded spelling (every such text pandas parses)
    possible: str  # RE2: a superset of the texts pandas can parse with the format
    day_at: int | None  # where %d's two digits sit in a canonical text (to catch 30 Feb)


_CONTROL = {"\t": r"\t", "\n": r"\n", "\r": r"\r", "\f": r"\f", "\v": r"\v"}


def _re2_literal(char: str) -> str:
    """An ASCII character as an RE2 literal."""
    if char.isalnum() or char == " ":
        return char
    return _CONTROL.get(char, "\\" + char)


def _fast_format(fmt: str) -> _FastFormat | None:
    """The Arrow patterns for ``fmt``, or None when it has a directive outside _DIRECTIVES."""
    if not fmt.isascii():
        return None
    canonical, possible, width, day_at = ["^"], ["^"], 0, None
    for directive, space, char in _FORMAT_PIECE.findall(fmt):
        if directive:
            if directive not in _DIRECTIVES:
                return None
            exact, loose = _DIRECTIVES[directive]
            if directive == "d":
                day_at = width
            canonical.append(exact)
            possible.append(loose)
            width += _WIDTH.get(directive, 2)
        elif space:  # pandas reads whitespace in a format as one or more whitespace chars
            canonical.append("".join(map(_re2_literal, space)))
            possible.append(r"[^\pN\pP\pS]+")
            width += len(space)
        elif char == "%":  # a stray % (pandas decides what it means)
            return None
        else:  # a literal; pandas matches it ignoring case
            canonical.append(_re2_literal(char))
            possible.append(r"\pL" if char.isalpha() else _re2_literal(char))
            width += 1
    return _FastFormat("".join(canonical) + "$", "".join(possible) + "$", day_at)


def _arrow_dates(texts: pa.Array, fmt: str, fast: _FastFormat) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``texts``, datetime64[s] values) of the texts in ``fmt``'s canonical
    spelling that are real dates (Arrow rolls 30 Feb over to 2 Mar: the day read back must
    match the text's)."""
    hit = pc.match_substring_regex(texts, fast.canonical).fill_null(False)
    rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
    if not len(rows):
        return rows, np.empty(0, dtype="datetime64[s]")
    sub = texts.take(pa.array(rows))
    stamps = pc.strptime(sub, format=fmt, unit="s", error_is_null=True)
    ok = stamps.is_valid()
    if fast.day_at is not None:
        day = pc.cast(pc.utf8_slice_codeunits(sub, fast.day_at, fast.day_at + 2), pa.int64())
        ok = pc.and_(ok, pc.equal(pc.day(stamps), day))
    ok_np = ok.fill_null(False).to_numpy(zero_copy_only=False)
    values = stamps.to_numpy(zero_copy_only=False).astype("datetime64[s]")
    return rows[ok_np], values[ok_np]


def _parse_formats(text: pd.Series, formats: list[str]) -> np.ndarray:
    """datetime64[s] per row (NaT where no format parses), trying formats in order; the same
    answers as pandas.to_datetime(format=...) per format, most of them computed in Arrow."""
    parsed = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[s]")
    todo = ~_blank(text)
    arr = _arrow(text)
    for fmt in formats:
        if not todo.any():
            break
        pending = todo
        fast = _fast_format(fmt)
        if fast is not None:
            left = np.flatnonzero(todo)
            texts = arr.take(pa.array(left))
            rows, values = _arrow_dates(texts, fmt, fast)
            parsed[left[rows]] = values
            todo[left[rows]] = False
            # pandas sees only what it might parse: other spellings, any non-ASCII text
            maybe = pc.or_(
                pc.match_substring_regex(texts, fast.possible), pc.invert(pc.string_is_ascii(texts))
            )
            pending = np.zeros(len(text), dtype=bool)
            pending[left[maybe.fill_null(False).to_numpy(zero_copy_only=False)]] = True
            pending &= todo
        if not pending.any():
            continue
        utc = "%z" in fmt or "%Z" in fmt
        got = pd.to_datetime(text[pending], format=fmt, errors="coerce", utc=utc)
        if utc:
            got = got.dt.tz_localize(None)
        got_np = got.to_numpy(dtype="datetime64[s]")
        hit = ~np.isnat(got_np)
        rows = np.flatnonzero(pending)[hit]
        parsed[rows] = got_np[hit]
        todo[rows] = False
    return parsed


def _parse_date(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values).str.strip()
    # Dates repeat a lot: parse and render each distinct text once, then fan out by code.
    codes, uniques = pd.factorize(text)
    distinct = pd.Series(uniques, dtype=TEXT)
    parsed = _parse_formats(distinct, params["formats"])
    nat = np.isnat(parsed)
    unit = "D" if params["output"] == "date" else "s"
    rendered = pa.array(np.datetime_as_string(parsed, unit=unit), pa.large_string(), mask=nat)
    if unit == "s":
        rendered = pc.replace_substring(rendered, "T", " ")
    out = _series(rendered.take(pa.array(codes, mask=codes < 0)), text.index)
    bad_distinct = np.append(nat & ~_blank(distinct), False)  # code -1 (null) -> last slot
    bad = bad_distinct[codes]
    shown = ", ".join(params["formats"])
    return StepResult(out, _errors(text, bad, "", f" is not a valid date for formats {shown}"))


# --------------------------------------------------------------------------- cast


def _cast_int(text: pd.Series) -> tuple[pd.Series, np.ndarray]:
    ok = text.str.fullmatch("[+-]?[0-9]+([.]0*)?").fillna(False).to_numpy(dtype=bool)
    out = text.str.replace("[.]0*", "", regex=True).str.replace("^[+]", "", regex=True)
    out = out.str.replace("^(-?)0+([0-9])", r"\1\2", regex=True)
    return out.mask(out == "-0", "0"), ok


def _cast_decimal(text: pd.Series, scale: int) -> tuple[pd.Series, np.ndarray]:
    pattern = "[+-]?([0-9]{1,28}([.][0-9]*)?|[.][0-9]+)"
    ok = text.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
    # Digits past the 10th decimal are dropped before the cast: arrow refuses lossy rescaling.
    clean = text.mask(~ok).str.replace("[.]([0-9]{0,10})[0-9]*", r".\1", regex=True)
    dec = pc.cast(_arrow(clean), pa.decimal128(38, 10))
    rounded = pc.round(dec, ndigits=scale, round_mode="half_towards_infinity")
    out = pc.cast(pc.cast(rounded, pa.decimal128(38, scale)), pa.large_string())
    return _series(out, text.index), ok


def _cast_bool(text: pd.Series) -> tuple[pd.Series, np.ndarray]:
    low = text.str.lower()
    truthy = low.isin(_TRUE).to_numpy(dtype=bool)
    falsy = low.isin(_FALSE).to_numpy(dtype=bool)
    out = pd.Series(np.where(truthy, "true", "false"), index=text.index, dtype=TEXT)
    return out, truthy | falsy


def _cast(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    target = params["to"]
    if target == "text":
        return StepResult(text)
    stripped = text.str.strip()
    if params["thousands_separator"]:
        stripped = stripped.str.replace(params["thousands_separator"], "", regex=False)
    if target == "int":
        out, ok = _cast_int(stripped)
    elif target == "decimal":
        out, ok = _cast_decimal(stripped, params["scale"])
    else:
        out, ok = _cast_bool(stripped)
    blank = _blank(stripped)
    out = _null_where(out, blank | ~ok)
    return StepResult(out, _errors(text, ~ok & ~blank, "cannot cast ", f" to {target}"))


# --------------------------------------------------------------------------- identity & masking


def _uuid_namespace(namespace: str, scope: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"migration-planner:{namespace}/{scope}")


def _uuid_bytes_to_text(raw: bytes, count: int) -> pa.Array:
    """Format ``count`` 16-byte digests as version-5 UUID strings, vectorised with numpy."""
    a = np.frombuffer(raw, dtype=np.uint8).reshape(count, 16).copy()
    a[:, 6] = (a[:, 6] & 0x0F) | 0x50  # version 5
    a[:, 8] = (a[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = np.empty((count, 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[a >> 4]
    hexed[:, 1::2] = _HEX[a & 0x0F]
    out = np.full((count, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
        width = 12 if dst == 24 else (8 if dst == 0 else 4)
        out[:, dst : dst + width] = hexed[:, src : src + width]
    offsets = np.arange(0, 36 * (count + 1), 36, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())
    )


def uuid5_texts(namespace_uuid: uuid.UUID, names: list[str | None]) -> pa.Array:
    """``str(uuid.uuid5(namespace_uuid, name))`` per name as an arrow array (None stays null)."""
    base = hashlib.sha1(namespace_uuid.bytes, usedforsecurity=False)
    null = bytes(16)
    digests = bytearray()
    for name in names:
        if name is None:
            digests += null
            continue
        h = base.copy()
        h.update(name.encode())
        digests += h.digest()[:16]
    texts = _uuid_bytes_to_text(bytes(digests), len(names))
    is_null = pa.array([name is None for name in names])
    return pc.if_else(is_null, pa.scalar(None, pa.large_string()), texts)


def _uuid_from_key(values: pd.Series | pd.DataFrame, params: dict, ctx: RuleContext) -> StepResult:
    if params["from"] == "value":
        names = to_python(values).tolist()
    elif ctx.source_keys is None:
        raise RuleParamError("from", "no source keys available to derive UUIDs from")
    else:
        names = to_python(ctx.source_keys).tolist()
    texts = uuid5_texts(_uuid_namespace(ctx.namespace, params["scope"]), names)
    return StepResult(_series(texts, values.index))


def _hash(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    salt = params["salt"].encode()
    digests = [
        None if v is None else (hashlib.sha256(salt + v.encode()).hexdigest() if v else "")
        for v in to_python(text).tolist()
    ]
    return StepResult(pd.Series(digests, index=text.index, dtype=TEXT))


def _mask(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    arr = _arrow(values)
    keep = params["keep_last"]
    char = (params["mask_char"] or "*")[0]
    lengths = pc.utf8_length(arr)
    short = pc.less_equal(lengths, keep)
    hidden = pc.if_else(short, lengths, pc.subtract(lengths, keep))
    stars = pc.binary_repeat(pa.scalar(char, pa.large_string()), hidden)
    tail = pc.utf8_slice_codeunits(arr, start=-keep) if keep else pc.utf8_slice_codeunits(arr, 0, 0)
    tail = pc.if_else(short, pa.scalar("", pa.large_string()), tail)
    return StepResult(_series(pc.binary_join_element_wise(stars, tail, _EMPTY), values.index))


# --------------------------------------------------------------------------- registry

_NULLS = {
    "copy": "Null and empty strings pass through unchanged.",
    "trim": "Null stays null; values empty after trimming become null (unless disabled).",
    "upper": "Null stays null; empty strings stay empty.",
    "lower": "Null stays null; empty strings stay empty.",
    "title": "Null stays null; empty strings stay empty.",
    "concat": "Null and empty parts are skipped; null when every part is empty.",
    "coalesce": "Null and empty values are skipped; null when every column is empty.",
    "split": "Null and empty values become null, as do parts missing at that position.",
    "value_map": "Null, empty and unmapped-blank values follow 'on_null': stay null, get the "
    "table's default, or fail the row (a table entry for '' maps empty strings).",
    "regex_replace": "Null stays null; empty strings are matched like any other value.",
    "regex_validate": "Null and empty values pass (use 'required' to demand a value).",
    "phone_format": "Null, empty and whitespace-only values become null and pass.",
    "email": "Null, empty and whitespace-only values become null and pass.",
    "parse_date": "Null, empty and whitespace-only values become null and pass.",
    "cast": "Null stays null; empty values become null for int, decimal and bool.",
    "truncate": "Null stays null.",
    "default_if_null": "Replaces null (and, by default, empty) values.",
    "constant": "Ignores the input.",
    "uuid_from_key": "Ignores the input unless hashing the value, where null stays null.",
    "hash": "Null stays null; empty strings stay empty.",
    "mask": "Null stays null; empty strings stay empty.",
    "reference_lookup": "Null and empty values become null and pass (an optional parent).",
}
_P_SEPARATOR = Param("separator", "str", default=" ", help="Text placed between the parts.")
_P_STRIP = Param("strip", "bool", default=True, help="Trim whitespace around each part first.")
_P_PATTERN = Param("pattern", "regex", required=True, help="Regular expression (RE2 syntax).")


def _rule(
    name: str,
    label: str,
    description: str,
    fn: RuleFn,
    *params: Param,
    accepts_frame: bool = False,
    category: str = "invalid_value",
) -> RuleType:
    return RuleType(
        name, label, description, tuple(params), fn, accepts_frame, category, _NULLS[name]
    )


_RULES = (
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
    _rule("title", "Title case", "Capitalises the first letter of each word (Acme Corp.).", _title),
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
        "value_map",
        "Value map",
        "Translates values through a lookup table, with a default or a failure for unmapped "
        "values.",
        _value_map,
        Param("lookup", "lookup", required=True, help="Name of the lookup table."),
        Param(
            "on_missing",
            "choice",
            default="default",
            choices=("default", "fail", "keep"),
            help="Unmapped values: the table's default, fail the row, or keep the value.",
        ),
        Param(
            "on_null",
            "choice",
            default="default",
            choices=("default", "null", "fail"),
            help="Null or empty values the table does not map: the table's default, stay "
            "null, or fail the row.",
        ),
        Param(
            "ignore_case",
            "bool",
            default=False,
            help="Match keys ignoring case and surrounding whitespace.",
        ),
        category="lookup_miss",
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
        "parse_date",
        "Parse date",
        "Parses dates with a list of formats into ISO YYYY-MM-DD (or YYYY-MM-DD HH:MM:SS).",
        _parse_date,
        Param(
            "formats",
            "list",
            default=["%Y-%m-%d"],
            help="strptime formats tried in order, e.g. %d/%m/%Y.",
        ),
        Param(
            "output",
            "choice",
            default="date",
            choices=("date", "datetime"),
            help="ISO date or ISO date and time.",
        ),
        category="invalid_date",
    ),
    _rule(
        "cast",
        "Cast",
        "Casts the value to an integer, a decimal, a boolean or text.",
        _cast,
        Param(
            "to",
            "choice",
            required=True,
            choices=("int", "decimal", "bool", "text"),
            help="Target type.",
        ),
        Param(
            "scale",
            "int",
            default=2,
            min_value=0,
            max_value=10,
            help="Decimal places kept by decimal casts (rounded half away from zero).",
        ),
        Param(
            "thousands_separator",
            "str",
            default="",
            help="Character removed before numeric casts, e.g. ','.",
        ),
        category="type_cast",
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
    _rule(
        "uuid_from_key",
        "UUID from key",
        "Derives a deterministic UUID (version 5) from the row's source key and the plan.",
        _uuid_from_key,
        Param(
            "scope",
            "str",
            default="",
            help="Extra namespace text, e.g. the entity name, so equal keys differ.",
        ),
        Param(
            "from",
            "choice",
            default="source_key",
            choices=("source_key", "value"),
            help="Hash the row's source key, or the incoming value.",
        ),
        accepts_frame=True,
    ),
    _rule(
        "hash",
        "Hash",
        "Replaces the value with its SHA-256 hex digest.",
        _hash,
        Param("salt", "str", default="", help="Text prepended before hashing."),
    ),
    _rule(
        "mask",
        "Mask",
        "Masks all but the last few characters of the value.",
        _mask,
        Param(
            "keep_last",
            "int",
            default=4,
            min_value=0,
            help="Characters left visible; shorter values are masked completely.",
        ),
        Param("mask_char", "str", default="*", help="Masking character."),
    ),
    _rule(
        "reference_lookup",
        "Reference lookup",
        "Replaces an old parent key with the new key the parent entity was loaded under.",
        _reference_lookup,
        Param("entity", "entity", required=True, help="The parent entity (loaded earlier)."),
        category="reference_missing",
    ),
)

REGISTRY: dict[str, RuleType] = {rule.name: rule for rule in _RULES}


# --------------------------------------------------------------------------- validation


def _check_int(param: Param, value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleParamError(param.name, f"must be an integer, got {value!r}")
    if param.min_value is not None and value < param.min_value:
        raise RuleParamError(param.name, f"must be at least {param.min_value}")
    if param.max_value is not None and value > param.max_value:
        raise RuleParamError(param.name, f"must be at most {param.max_value}")
    return value


def _check_bool(param: Param, value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if not isinstance(value, bool):
        raise RuleParamError(param.name, f"must be true or false, got {value!r}")
    return value


def _check_list(param: Param, value: Any) -> list[str]:
    if isinstance(value, str):  # a textarea: one item per line
        value = [line.strip() for line in value.splitlines() if line.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise RuleParamError(param.name, "must be a list of texts")
    if not value:
        raise RuleParamError(param.name, "must not be empty")
    return list(value)


def _check_value(param: Param, value: Any) -> Any:
    if param.type == "int":
        return _check_int(param, value)
    if param.type == "bool":
        return _check_bool(param, value)
    if param.type == "list":
        return _check_list(param, value)
    if not isinstance(value, str):
        raise RuleParamError(param.name, f"must be text, got {value!r}")
    if param.type == "choice" and value not in param.choices:
        raise RuleParamError(param.name, f"must be one of {', '.join(param.choices)}")
    if param.type == "regex":
        try:
            regex_compile(value)
        except RegexRefused as exc:
            raise RuleParamError(param.name, str(exc)) from None
    if param.type in ("lookup", "entity", "column") and not value:
        raise RuleParamError(param.name, "must not be empty")
    return value


def validate_params(rule_name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters checked and normalised with defaults filled; pure; raises RuleParamError."""
    rule = REGISTRY.get(rule_name)
    if rule is None:
        raise RuleParamError("rule", f"unknown rule type {rule_name!r}")
    given = dict(params or {})
    declared = {p.name for p in rule.params}
    unknown = sorted(set(given) - declared)
    if unknown:
        raise RuleParamError(unknown[0], f"unknown parameter for rule {rule_name!r}")
    out: dict[str, Any] = {}
    for param in rule.params:
        value = given.get(param.name)
        if value is None:
            if param.required:
                raise RuleParamError(param.name, "is required")
            out[param.name] = list(param.default) if param.type == "list" else param.default
            continue
        out[param.name] = _check_value(param, value)
    return out


def run_step(
    rule_name: str,
    values: pd.Series | pd.DataFrame,
    params: Mapping[str, Any] | None,
    ctx: RuleContext,
) -> StepResult:
    """Validate ``params`` and apply one rule (e.g. a browser preview); pure; RuleParamError."""
    rule = REGISTRY.get(rule_name)
    checked = validate_params(rule_name, params)
    if isinstance(values, pd.DataFrame) and not rule.accepts_frame:
        if values.shape[1] != 1:
            raise RuleParamError("rule", f"{rule_name!r} takes one column; combine sources first")
        values = values.iloc[:, 0]
    return rule.fn(values, checked, ctx)
