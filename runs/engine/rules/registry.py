"""The registry: every family's rules assembled in menu order, parameter validation, and
``run_step`` (one rule applied, e.g. for a preview)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from runs.engine.safe_regex import (
    RegexRefused,
    regex_compile,
)

from . import dates, identity, lookups, numbers, text
from .core import _FALSE, _TRUE, Param, RuleContext, RuleParamError, RuleType, StepResult

_FAMILIES = (text, lookups, dates, numbers, identity)
# The order the forms, the API and the plan document list rule types in.
MENU_ORDER = (
    "copy",
    "trim",
    "upper",
    "lower",
    "title",
    "concat",
    "coalesce",
    "split",
    "value_map",
    "regex_replace",
    "regex_validate",
    "phone_format",
    "email",
    "parse_date",
    "cast",
    "truncate",
    "default_if_null",
    "constant",
    "uuid_from_key",
    "hash",
    "mask",
    "reference_lookup",
)


def _assemble() -> dict[str, RuleType]:
    found = [rule for family in _FAMILIES for rule in family.RULES]
    by_name = {rule.name: rule for rule in found}
    if len(by_name) != len(found) or set(by_name) != set(MENU_ORDER):
        raise RuntimeError("every rule type is registered once and has a place in MENU_ORDER")
    return {name: by_name[name] for name in MENU_ORDER}


REGISTRY: dict[str, RuleType] = _assemble()


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
        allowed = ", ".join(p.name for p in rule.params) or "none"
        raise RuleParamError(
            unknown[0],
            f"unknown parameter “{unknown[0]}” for rule {rule_name!r} (allowed: {allowed})",
        )
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
