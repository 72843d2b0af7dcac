"""MySQL dialect helpers: quoting, text expressions per type, bound values and keyset clauses."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from runs.engine.connectors.base import (
    ColumnInfo,
)
from runs.engine.connectors.base.dialect import Dialect

_CHUNK = 1000


_BINARY_TYPES = frozenset(
    {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry"}
)


_INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})


_DECIMAL_TYPES = frozenset({"decimal", "numeric"})


_TIME_CASTS = {
    "date": "DATE",
    "datetime": "DATETIME(6)",
    "timestamp": "DATETIME(6)",
    "time": "TIME(6)",
}


def q(name: str) -> str:
    """MySQL identifier quoting: wrap in backticks, double embedded backticks and ``%``."""
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def _qcols(names: Sequence[str]) -> str:
    return ", ".join(q(n) for n in names)


def text_expr(col: ColumnInfo, prefix: str = "", name: str | None = None) -> str:
    """The column's value (or the value called ``name`` of its type) as utf8mb4 text, as the
    server itself writes it."""
    ref = prefix + q(name or col.name)
    if col.cast_type in _BINARY_TYPES:
        return f"CONCAT(_utf8mb4 0x5C78, LOWER(HEX({ref})))"  # '\x' + hex, as PostgreSQL bytea
    if col.cast_type == "bit":
        return f"CAST({ref} + 0 AS CHAR)"
    return f"CAST({ref} AS CHAR)"


def _bound(col: ColumnInfo, text: Any) -> tuple[str, Any]:
    """(SQL placeholder expression, parameter) comparing ``col`` with a value given as text.

    Integers and decimals travel as exact numbers (never as strings, which MySQL would compare
    as doubles); dates and times are cast to the column's type; binary keys are unhexed; text
    is compared under the column's collation. Raises ValueError when ``text`` cannot be a
    value of the column (the caller skips or reports it).
    """
    t = col.cast_type
    if text is None:
        return "%s", None
    value = str(text)
    if t in _INTEGER_TYPES:
        return "%s", int(value)
    if t in _DECIMAL_TYPES:
        try:
            return "%s", Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    if t in _TIME_CASTS:
        return f"CAST(%s AS {_TIME_CASTS[t]})", value
    if t in _BINARY_TYPES:
        hexed = value[2:] if value.startswith("\\x") else value
        bytes.fromhex(hexed)  # ValueError when not hex
        return "UNHEX(%s)", hexed
    return "%s", value


def _keyset(cols: Sequence[ColumnInfo], bound: Sequence[Any], op: str) -> tuple[str, list[Any]]:
    """Lexicographic ``(cols) op (bound)`` spelled out (``>`` or ``<=``) so every MySQL and
    MariaDB version uses the key's index for it: ``k1 >= b1 AND (k1 > b1 OR (k1 = b1 AND …))``."""
    strict = ">" if op == ">" else "<"
    exprs = [_bound(c, v) for c, v in zip(cols, bound, strict=True)]
    terms, params = [], []
    for i, col in enumerate(cols):
        parts = []
        for j in range(i):
            parts.append(f"{q(cols[j].name)} = {exprs[j][0]}")
            params.append(exprs[j][1])
        last = op if i == len(cols) - 1 else strict
        parts.append(f"{q(col.name)} {last} {exprs[i][0]}")
        params.append(exprs[i][1])
        terms.append("(" + " AND ".join(parts) + ")")
    lead = f"{q(cols[0].name)} {'>=' if op == '>' else '<='} {exprs[0][0]}"
    return f"({lead} AND ({' OR '.join(terms)}))", [exprs[0][1], *params]


class MysqlDialect(Dialect):
    """MySQL's dialect: ``%s`` placeholders (every query formatted: ``%`` doubled in names),
    text as the server writes it (``text_expr``)."""

    param = "%s"
    chunk = _CHUNK
    nth_row = "MOD(mp_rn, {P}) = 0"
    duplicates_by_text = False

    def quote(self, name: str) -> str:
        return q(name)

    def text(self, col: ColumnInfo, ref: str | None = None) -> str:
        return text_expr(col, name=ref)

    def bound(self, col: ColumnInfo) -> str:
        return text_expr(col)


OPS = MysqlDialect()
