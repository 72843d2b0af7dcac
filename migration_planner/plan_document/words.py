"""The plan document in words: rule chains, filters and checks from the rule registry."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from runs.engine.rules import REGISTRY, RuleParamError, validate_params

# --------------------------------------------------------------------------- rules in words


def _q(value: Any) -> str:
    return f"“{value}”"


_MISSING = {
    "default": "unmapped values get the table's default",
    "fail": "unmapped values fail",
    "keep": "unmapped values kept",
}
_CASTS = {"int": "integer", "bool": "true/false", "text": "text", "decimal": "decimal"}

# A short phrase per registry rule, from its checked parameters.
_PHRASES: dict[str, Any] = {
    "copy": lambda p: "copy unchanged",
    "trim": lambda p: "trim whitespace" + ("" if p["empty_to_null"] else " (keep empty)"),
    "upper": lambda p: "upper case",
    "lower": lambda p: "lower case",
    "title": lambda p: "title case",
    "concat": lambda p: f"join the sources with {_q(p['separator'])}",
    "coalesce": lambda p: "take the first non-empty source",
    "split": lambda p: (
        f"split on {_q(p['separator'])} and keep "
        + (
            "the last part"
            if p["index"] == -1
            else f"part {p['index'] + 1}"
            if p["index"] >= 0
            else f"part {p['index']} from the end"
        )
    ),
    "value_map": lambda p: (
        f"map through lookup table {_q(p['lookup'])} ("
        + _MISSING[p["on_missing"]]
        + (", ignoring case" if p["ignore_case"] else "")
        + ")"
    ),
    "regex_replace": lambda p: (
        f"replace /{p['pattern']}/ with {_q(p['replacement'])}"
        if p["replacement"]
        else f"remove /{p['pattern']}/"
    ),
    "regex_validate": lambda p: (
        f"fail values not matching /{p['pattern']}/"
        + (f" ({p['message']})" if p["message"] else "")
    ),
    "phone_format": lambda p: "format as (XXX) XXX-XXXX",
    "email": lambda p: "lower-case and validate as an e-mail address",
    "parse_date": lambda p: (
        f"parse dates ({', '.join(p['formats'])}) to ISO "
        + ("date" if p["output"] == "date" else "date and time")
    ),
    "cast": lambda p: (
        "cast to "
        + _CASTS[p["to"]]
        + (f" with {p['scale']} places" if p["to"] == "decimal" else "")
        + (f" (removing {_q(p['thousands_separator'])})" if p["thousands_separator"] else "")
    ),
    "truncate": lambda p: (
        f"fail values longer than {p['length']} characters"
        if p["on_overflow"] == "fail"
        else f"cut to {p['length']} characters"
    ),
    "default_if_null": lambda p: f"use {_q(p['value'])} when empty",
    "constant": lambda p: f"set to {_q(p['value'])}",
    "uuid_from_key": lambda p: (
        "derive a UUID from the "
        + ("source key" if p["from"] == "source_key" else "value")
        + (f" (scope {_q(p['scope'])})" if p["scope"] else "")
    ),
    "hash": lambda p: "replace with its SHA-256 hash" + (" (salted)" if p["salt"] else ""),
    "mask": lambda p: f"mask all but the last {p['keep_last']} characters",
    "reference_lookup": lambda p: f"replace the old key with the new {_q(p['entity'])} id",
}


def rule_step_words(rule: str, params: dict | None) -> str:
    """One rule step in words, e.g. ``fail values longer than 80 characters``. Pure."""
    try:
        checked = validate_params(rule, params)
    except RuleParamError:
        return f"{rule} (invalid parameters)"
    if rule in _PHRASES:
        return _PHRASES[rule](checked)
    described = REGISTRY[rule].description.rstrip(".")  # a rule added without a phrase
    given = ", ".join(f"{k} {_q(v)}" for k, v in (params or {}).items())
    return described[0].lower() + described[1:] + (f" ({given})" if given else "")


def rule_chain_words(
    steps: list[tuple[str, dict]],
    *,
    sources: int = 1,
    default: str | None = None,
    required: bool = False,
) -> str:
    """A whole chain as one sentence: ``Trim whitespace, then title case, then …``. Pure."""
    parts = [rule_step_words(rule, params) for rule, params in steps]
    if not parts:
        parts = ["direct map"] if sources else ["no source (left empty)"]
    text = ", then ".join(parts)
    text = text[0].upper() + text[1:]
    if default is not None:
        text += f"; {_q(default)} when empty"
    return text + ("; required" if required else "") + "."


# --------------------------------------------------------------------------- context

_OPS = {
    "eq": "=",
    "ne": "≠",
    "in": "is one of",
    "not_in": "is not one of",
    "is_null": "is empty",
    "not_null": "is not empty",
    "gt": ">",
    "ge": "≥",
    "lt": "<",
    "le": "≤",
    "regex": "matches",
}
_CHECKS = {
    "row_count_range": "between {min:,} and {max:,} rows",
    "unique": "no duplicate values",
    "completeness": "at least {min_pct}% filled",
    "format": "values match the {pattern} format",
    "row_count_match": "target rows equal source rows (tolerance {tolerance_pct}%)",
    "sum_match": "source and target sums equal (tolerance {tolerance})",
    "category_count_match": "counts per value equal in source and target",
    "sample_compare": "a {pct}% random sample compared field by field",
    "referential_integrity": "every value points at a migrated {parent} row",
    "checksum": "ledger row hashes equal the rows in the target",
}


def _filter_words(flt: dict) -> str:
    op = _OPS.get(flt.get("op"), flt.get("op"))
    value = flt.get("value")
    shown = "" if flt.get("op") in ("is_null", "not_null") else f" {_q(value)}"
    return f"{flt.get('column')} {op}{shown}"


def _check_words(rule) -> str:
    params = rule.params or {}
    try:
        return _CHECKS[rule.kind].format(**params)
    except (KeyError, ValueError, IndexError):
        given = ", ".join(f"{k} = {v}" for k, v in sorted(params.items()))
        return rule.get_kind_display() + (f" ({given})" if given else "")


# --------------------------------------------------------------------------- numbers and units


def plural(n: int, singular: str, many: str | None = None) -> str:
    """``1 entity`` / ``3 entities`` (pure)."""
    return f"{n:,} {singular if n == 1 else (many or singular + 's')}"


def duration_text(days: int, *, short: bool = False) -> str:
    """A duration in whole weeks and days: ``2 weeks``, ``1 week 5 days`` (``1 wk 5 d``)."""
    weeks, rest = divmod(days, 7)
    if short:
        parts = [f"{weeks} wk"] * bool(weeks) + [f"{rest} d"] * bool(rest)
    else:
        parts = [plural(weeks, "week")] * bool(weeks) + [plural(rest, "day")] * bool(rest)
    return " ".join(parts) or ("0 d" if short else "0 days")


def _sentence(text: str) -> str:
    """First letter up, the rest as written (names keep their case), full stop (pure)."""
    return (text[:1].upper() + text[1:] + ".") if text else ""


def _pct(value: Decimal | float) -> str:
    return f"{Decimal(value).normalize():f}"
