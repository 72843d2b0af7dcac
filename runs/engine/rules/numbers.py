"""Number rules: ``cast`` to integer, decimal, true/false or text."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .core import (
    _FALSE,
    _TRUE,
    TEXT,
    Param,
    RuleContext,
    RuleType,
    StepResult,
    _arrow,
    _blank,
    _errors,
    _null_where,
    _series,
    as_text,
    rule_type,
)


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


# --------------------------------------------------------------------------- registered here

_NULLS = {
    "cast": "Null stays null; empty values become null for int, decimal and bool.",
}
_rule = partial(rule_type, _NULLS)

RULES: tuple[RuleType, ...] = (
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
)
