"""Lookup and reference rules: value maps through a plan's lookup tables, and parent keys
through the reference map of an entity loaded earlier."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .core import (
    Param,
    RuleContext,
    RuleParamError,
    RuleType,
    StepResult,
    _arrow,
    _blank,
    _errors,
    _nulls,
    _series,
    as_text,
    rule_type,
)


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


# --------------------------------------------------------------------------- registered here

_NULLS = {
    "value_map": "Null, empty and unmapped-blank values follow 'on_null': stay null, get the "
    "table's default, or fail the row (a table entry for '' maps empty strings).",
    "reference_lookup": "Null and empty values become null and pass (an optional parent).",
}
_rule = partial(rule_type, _NULLS)

RULES: tuple[RuleType, ...] = (
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
        "reference_lookup",
        "Reference lookup",
        "Replaces an old parent key with the new key the parent entity was loaded under.",
        _reference_lookup,
        Param("entity", "entity", required=True, help="The parent entity (loaded earlier)."),
        category="reference_missing",
    ),
)
