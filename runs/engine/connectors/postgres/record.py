"""The batch record's INSERT on PostgreSQL with its arrays (key map, row state: ~16,700
elements each) sent cheaply: each distinct array literal once, arrays of hex digits as one
comma-separated text split by ``string_to_array`` (array_in parses a 32-digit hash element
about four times slower)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runs.engine.connectors.base.dialect import Clause

from .operations import OPS

# Every byte an array literal of hex hashes or row versions holds (text_array quotes each
# element; PostgreSQL's own output does not).
_PLAIN = b'0123456789abcdef{}",'


def insert_record(record: Mapping[str, Any], arrays: set[str]) -> Clause:
    """INSERT of one ``mp_ledger.batch`` row: column -> value; the columns in ``arrays`` hold
    text[] literals (or None). Equal literals are parsed once (a CTE); one whose elements are
    all hex digits goes as plain text to ``string_to_array``. Pure."""
    exprs: list[str] = []  # the CTE's select list
    params: list[Any] = []
    seen: list[tuple[str, str]] = []  # (literal, alias)
    marks = []
    for name, value in record.items():
        if name not in arrays or value is None:
            marks.append(OPS.param)
            continue
        alias = next((a for lit, a in seen if len(lit) == len(value) and lit == value), None)
        if alias is None:
            alias = f"a{len(seen)}"
            seen.append((value, alias))
            expr, param = _array_param(value)
            exprs.append(f"{expr} AS {alias}")
            params.append(param)
        marks.append(f"(SELECT {alias} FROM mp_v)")
    values = [v for k, v in record.items() if k not in arrays or v is None]
    names = ", ".join(record)
    with_ = f"WITH mp_v AS (SELECT {', '.join(exprs)}) " if exprs else ""
    query = OPS.sql(with_ + "INSERT INTO {L}batch" + f" ({names}) VALUES ({', '.join(marks)})")
    return query, params + values


def _array_param(literal: str) -> tuple[str, str]:
    """(SQL expression with one placeholder, its parameter) for a text[] literal. Pure."""
    plain = literal[1:-1].replace('"', "")
    # string_to_array('') is no element: a lone empty element keeps its literal
    if not literal.encode("utf-8").translate(None, _PLAIN) and (plain or literal == "{}"):
        return "string_to_array(" + OPS.param + ", ',')", plain
    return OPS.param + "::text[]", literal
