"""The independent oracle of typed target columns (tests/runs/test_oracle_data_path.py): what a
column should accept and hold, from PostgreSQL's documented input syntax, in plain Python,
never calling the engine. The rules' oracle is oracle_model.py."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from tests.runs.oracle_model import Fail

_PG_TRUE = {"t", "true", "y", "yes", "on", "1"}
_PG_FALSE = {"f", "false", "n", "no", "off", "0"}
_INT_RANGE = {"integer": 2**31, "bigint": 2**63}


def _declared(col_type: str) -> tuple[str, tuple[int, ...]]:
    m = re.fullmatch(r"([a-z ]+?)\s*(?:\((\d+)(?:,(\d+))?\))?", col_type)
    assert m, col_type
    return m.group(1), tuple(int(g) for g in m.groups()[1:] if g is not None)


def _number(v: str) -> Decimal | None:
    t = v.strip(" ")
    if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:[+-]?nan)", t):
        return None  # PostgreSQL's numeric input: ASCII digits only
    return Decimal(t)


def _instant(v: str) -> str | None:
    try:
        parsed = datetime.fromisoformat(v.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def target_value(col_type: str, v: str | None) -> str | None | Fail:
    """What a column of ``col_type`` holds for the text ``v`` (in a canonical text of the
    oracle's own: numbers plain without trailing zeros, booleans true/false, uuids lower-case,
    json re-serialised with sorted keys, instants in UTC), or Fail(category) when the value
    does not fit the declared type."""
    if v is None:
        return None
    base, mods = _declared(col_type)
    if base in ("text",):
        return v
    if base in ("varchar", "char"):
        if len(v) > mods[0]:
            return Fail("too_long")
        return v.rstrip(" ") if base == "char" else v
    if base in _INT_RANGE:
        n = _number(v)
        if (
            n is None
            or not n.is_finite()
            or n != n.to_integral_value()
            or "." in v
            or "e" in v.lower()
        ):
            return Fail("type_cast")
        if not -_INT_RANGE[base] <= n < _INT_RANGE[base]:
            return Fail("type_cast")
        return str(int(n))
    if base == "numeric":
        n = _number(v)
        if n is None:
            return Fail("type_cast")
        if n.is_nan():
            return "NaN"
        p, s = mods
        plain = n.normalize()
        decimals = max(0, -plain.as_tuple().exponent)
        if decimals > s or abs(n) >= Decimal(10) ** (p - s):
            return Fail("type_cast")
        return "0" if n.is_zero() else format(plain, "f")
    if base == "boolean":
        word = v.strip().lower()
        if word in _PG_TRUE:
            return "true"
        if word in _PG_FALSE:
            return "false"
        return Fail("type_cast")
    if base == "uuid":
        t = v
        if t.startswith("{") and t.endswith("}"):
            t = t[1:-1]
        if not re.fullmatch(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}", t):
            return Fail("type_cast")
        return str(uuid.UUID(t.replace("-", "")))
    if base == "json":
        try:
            return json.dumps(json.loads(v), sort_keys=True)
        except ValueError:
            return Fail("type_cast")
    if base == "date":
        try:
            return date.fromisoformat(v).isoformat()
        except ValueError:
            return Fail("type_cast")
    if base == "timestamp":
        try:
            parsed = datetime.fromisoformat(v)
        except ValueError:
            return Fail("type_cast")
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if base == "timestamptz":
        got = _instant(v)
        return Fail("type_cast") if got is None else got
    raise AssertionError(col_type)


def stored_canonical(col_type: str, stored: object) -> str | None:
    """The oracle's canonical text (as target_value's) of what a target returned for a cell
    (PostgreSQL read as ``::text``; SQLite as stored)."""
    if stored is None:
        return None
    text = stored if isinstance(stored, str) else str(stored)
    base, _ = _declared(col_type)
    if base == "char":
        return text.rstrip(" ")
    if base in _INT_RANGE:
        return str(int(Decimal(text)))
    if base == "numeric":
        n = Decimal(text)
        return "NaN" if n.is_nan() else ("0" if n.is_zero() else format(n.normalize(), "f"))
    if base == "boolean":
        return "true" if text.strip().lower() in _PG_TRUE else "false"
    if base == "uuid":
        return str(uuid.UUID(text))
    if base == "json":
        return json.dumps(json.loads(text), sort_keys=True)
    if base == "date":
        return date.fromisoformat(text).isoformat()
    if base == "timestamp":
        return datetime.fromisoformat(text).strftime("%Y-%m-%dT%H:%M:%S.%f")
    if base == "timestamptz":
        return _instant(text)
    return text
