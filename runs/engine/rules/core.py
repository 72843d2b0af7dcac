"""What every rule family shares: the rule type and its parameters, the context and result of a
step, and the text helpers (pyarrow-backed strings, nulls, row errors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
# INSERT (required_missing, too_long, type_cast, unencodable: a character the database's
# encoding cannot hold) and the batch's read-back (coerced_by_target:
# a row the target stored otherwise than meant, connectors.base.COERCED).
FAILURE_CATEGORIES = (
    "invalid_format",
    "invalid_date",
    "lookup_miss",
    "required_missing",
    "too_long",
    "type_cast",
    "unencodable",
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
    """Mask of rows that are null or the empty string (Arrow's kernels: pandas' fillna and
    == on the same array cost ~0.4 ms more per 20,000 values, for every rule that asks)."""
    return pc.fill_null(pc.equal(_arrow(values), ""), True).to_numpy(zero_copy_only=False)


def _nulls(values: pd.Series) -> np.ndarray:
    """Mask of the null rows."""
    return _arrow(values).is_null().to_numpy(zero_copy_only=False)


def _null_where(values: pd.Series, mask: np.ndarray) -> pd.Series:
    if not mask.any():
        return values
    return values.mask(mask)


def _blank_to_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.large_string()), arr)


def _errors(values: pd.Series, mask: np.ndarray, prefix: str, suffix: str = "") -> pd.Series | None:
    """Error Series with ``prefix + 'value' + suffix`` on masked rows, None elsewhere (the
    value's first 80 characters, null shown as ''): the masked rows taken and joined by
    Arrow's kernels, the ones pandas' string methods called with ~0.5 ms more a call."""
    if not mask.any():
        return None
    shown = _arrow(values).filter(pa.array(mask)).fill_null(_EMPTY)
    shown = pc.utf8_slice_codeunits(shown, 0, _MSG_VALUE_CHARS)
    head = pa.scalar(prefix + "'", pa.large_string())
    tail = pa.scalar("'" + suffix, pa.large_string())
    texts = pc.binary_join_element_wise(head, shown, tail, _EMPTY)
    out = np.full(len(values), None, dtype=object)
    out[mask] = texts.to_numpy(zero_copy_only=False)
    return pd.Series(out, index=values.index, dtype=object)


def _text_bytes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets of each value, counted from the first value's start; the values' UTF-8 bytes)
    of a large_string array, read from its buffers (no copy). Pure."""
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, "u1")
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _rows_of(offsets: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Mask of the values that hold the byte positions ``at`` (``_text_bytes``' offsets)."""
    rows = np.zeros(len(offsets) - 1, dtype=bool)
    rows[np.searchsorted(offsets, at, side="right") - 1] = True
    return rows


def _may_have_ws_run(arr: pa.Array) -> np.ndarray:
    """Rows ``_WS_RUN`` may match in (a superset, by numpy over the values' bytes): every
    match holds a whitespace character other than the space — an ASCII control among
    \\t-\\r and U+001C-U+001F, or a non-ASCII character, whose UTF-8 bytes are all 0x80 or
    more — or two spaces in a row. Pure."""
    offsets, data = _text_bytes(arr)
    odd = (data >= 0x80) | ((data - 0x09) < 5) | ((data - 0x1C) < 4)  # uint8: wraps below
    space = data == 0x20
    odd[:-1] |= space[:-1] & space[1:]
    return _rows_of(offsets, np.flatnonzero(odd))


def _frame(values: pd.Series | pd.DataFrame) -> pd.DataFrame:
    return values.to_frame() if isinstance(values, pd.Series) else values


def rule_type(
    nulls: Mapping[str, str],
    name: str,
    label: str,
    description: str,
    fn: RuleFn,
    *params: Param,
    accepts_frame: bool = False,
    category: str = "invalid_value",
) -> RuleType:
    """A rule type whose null handling is ``nulls[name]`` (each family keeps its own texts)."""
    return RuleType(
        name, label, description, tuple(params), fn, accepts_frame, category, nulls[name]
    )
