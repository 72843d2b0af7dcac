"""Canonical text of a value per target column type: what the ledger hashes and what
reconciliation compares, on the intended side (the transformed text the engine means to write)
and on the stored side (what the target holds) alike.

Two values are the same when their canonical texts are equal. The canonical form forgets only
spelling, never meaning: ``1.50`` and ``1.5`` (numeric), ``TRUE`` and ``t`` (boolean), upper-
and lower-case uuids, ``{"a": 1}`` and ``{"a":1}`` (json), trailing blanks of ``char(n)``, and
the time zone a ``timestamptz`` is spelled in (the instant counts). A truncated string, a
rounded number, a shifted instant or a trigger's rewrite all change it.

PostgreSQL computes it in SQL (``pg_canonical_sql``), for the intended side from the text cast
to the column's type WITHOUT its typmod (``pg_intent_sql``: ``bpchar`` instead of ``char(3)``,
``numeric`` instead of ``numeric(10,2)``), so whatever the typmod, a trigger or a default does
to the value shows. SQLite (no casts, no typmods) uses ``canonical_text`` in Python on both
sides. Pure; no Django import.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from psycopg2 import sql

from runs.engine.connectors.base import ColumnInfo, type_family

_TRUE = frozenset({"t", "true", "y", "yes", "on", "1"})
_FALSE = frozenset({"f", "false", "n", "no", "off", "0"})
# A time of day followed by a zone (Z or an offset): the text names an instant.
_ZONED = r"[0-9]:[0-9]{2}(:[0-9]{2}(\.[0-9]*)?)?\s*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)\s*$"
_ZONED_RE = re.compile(_ZONED)
# What begins a zone _ZONED matches: one of them follows a ':' in every text it matches.
_ZONE_MARKS = ("z", "Z", "+", "-")


def _kind(col: ColumnInfo) -> str:
    """Canonical kind of a column: integer numeric boolean date timestamp timestamptz uuid json
    bpchar text."""
    t = col.family_type.lower().strip()
    if t in ("json", "jsonb"):
        return "json"
    if t in ("timestamp with time zone", "timestamptz"):
        return "timestamptz"
    if t in ("character", "bpchar", "char", "nchar"):
        return "bpchar"
    return type_family(t)


# ---------------------------------------------------------------- Python (SQLite)


def canonical_text(col: ColumnInfo, value: str | None) -> str | None:
    """The canonical text of ``value`` (text as written or read back) in column ``col``; a value
    that does not parse as the column's type stays as it is. Pure."""
    if value is None:
        return None
    text = str(value)
    kind = _kind(col)
    try:
        if kind == "integer":
            return str(int(text.strip()))
        if kind == "numeric":
            return _plain_decimal(Decimal(text.strip()))
        if kind == "boolean":
            word = text.strip().lower()
            return "true" if word in _TRUE else "false" if word in _FALSE else text
        if kind == "uuid":
            return str(uuid.UUID(text.strip()))
        if kind == "json":
            return json.dumps(_jsonb_order(json.loads(text)), ensure_ascii=False)
        if kind == "date":
            return date.fromisoformat(text.strip()).isoformat()
        if kind in ("timestamp", "timestamptz"):
            return _timestamp(text.strip())
    except (ValueError, InvalidOperation, ArithmeticError):
        return text
    if kind == "bpchar":
        return text.rstrip(" ")
    return text


def _jsonb_order(value: object) -> object:
    """JSON with object keys in jsonb's order (shorter first, then by bytes), the last of
    duplicate keys kept — so the text is that of PostgreSQL's ``jsonb::text``. Pure."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def _plain_decimal(number: Decimal) -> str:
    if not number.is_finite():
        return str(number)
    if number.is_zero():
        return "0"
    return format(number.normalize(), "f")


def _timestamp(text: str) -> str:
    """ISO timestamp canonically: naive as ``YYYY-MM-DDTHH:MM:SS.ffffff``, an instant with a
    zone converted to UTC with a ``Z``."""
    parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")


def canonical_row(cols: Sequence[ColumnInfo], values: Sequence[str | None]) -> list[str | None]:
    """``canonical_text`` of each value of a row. Pure."""
    return [canonical_text(c, v) for c, v in zip(cols, values, strict=True)]


# ---------------------------------------------------------------- PostgreSQL (SQL)


def pg_canonical_sql(expr: sql.Composable, col: ColumnInfo) -> sql.Composable:
    """SQL for the canonical text of ``expr``, a value of ``col``'s type (or its base type).
    Independent of the session's DateStyle and TimeZone; NULL exactly when ``expr`` is
    (``pg_hash_bytes_sql``'s ``nulls`` rely on it)."""
    kind = _kind(col)
    if kind == "timestamptz":
        return sql.SQL(
            "CASE WHEN isfinite({0}) THEN to_char({0} AT TIME ZONE 'UTC', "
            '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') ELSE {0}::text END'
        ).format(expr)
    if kind == "timestamp":
        return sql.SQL(
            "CASE WHEN isfinite({0}) THEN to_char({0}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
            "ELSE {0}::text END"
        ).format(expr)
    if kind == "date":
        return sql.SQL(
            "CASE WHEN isfinite({0}) THEN to_char({0}, 'YYYY-MM-DD') ELSE {0}::text END"
        ).format(expr)
    if kind == "numeric":
        return sql.SQL(
            "CASE WHEN {0}::text IN ('Infinity', '-Infinity', 'NaN') THEN {0}::text "
            "ELSE trim_scale({0}::numeric)::text END"
        ).format(expr)
    if kind == "json":
        return sql.SQL("({})::jsonb::text").format(expr)
    return sql.SQL("({})::text").format(expr)


def pg_intent_type(col: ColumnInfo) -> str:
    """The type the intended text is read as: the column's type without its typmod, with
    ``character`` (which alone means char(1)) as ``bpchar``, ``bit`` as ``bit varying`` and
    floating point as ``numeric`` (so digits a float cannot hold show)."""
    base = col.family_type
    if base.lower() in ("real", "double precision", "float4", "float8"):
        return "numeric"
    base = re.sub(r"^character(?! varying)", "bpchar", base)
    return re.sub(r"^bit(?! varying)", "bit varying", base)


def pg_intent_typed_sql(text_expr: sql.Composable, col: ColumnInfo) -> sql.Composable:
    """SQL reading the intended text as the column's type without typmod (``pg_intent_type``);
    for ``timestamp without time zone`` a text naming an instant (with a zone) is that instant
    in the session's zone, so a zone the column drops shows."""
    zoned = _zoned_condition(text_expr, col)
    if zoned is not None:
        return sql.SQL("CASE WHEN {zoned} THEN {instant} ELSE CAST({0} AS timestamp) END").format(
            text_expr, zoned=zoned, instant=_ZONED_INSTANT.format(text_expr)
        )
    return sql.SQL("CAST({} AS {})").format(text_expr, sql.SQL(pg_intent_type(col)))


def pg_zoned_intent_sql(text_expr: sql.Composable, col: ColumnInfo) -> sql.Composable | None:
    """For ``timestamp without time zone``: SQL for ``pg_intent_typed_sql``'s value where the
    text names an instant, NULL elsewhere (there the intent is the plain cast); None for
    other columns. So ``coalesce(it, CAST(text AS timestamp))`` is the intended value."""
    zoned = _zoned_condition(text_expr, col)
    if zoned is None:
        return None
    return sql.SQL("CASE WHEN {} THEN {} END").format(zoned, _ZONED_INSTANT.format(text_expr))


_ZONED_INSTANT = sql.SQL("CAST({} AS timestamptz) AT TIME ZONE current_setting('TimeZone')")


def _zoned_condition(text_expr: sql.Composable, col: ColumnInfo) -> sql.Composable | None:
    """SQL true where the text of a ``timestamp without time zone`` names an instant (``_ZONED``);
    None for other columns."""
    if _kind(col) != "timestamp" or "with time zone" in col.family_type:
        return None
    # _ZONED matches only where a zone letter or sign follows a ':' (its time of day):
    # four LIKEs (~0.1 µs a value) spare the regex (~0.5 µs) every text without one,
    # the answer unchanged (ISO dates have '-' only before the time). '%%' is '%' to
    # LIKE, and what psycopg2 turns into '%' when the query has parameters.
    return sql.SQL("({guard}) AND {0} ~ {1}").format(
        text_expr,
        sql.Literal(_ZONED),
        guard=sql.SQL(" OR ").join(
            sql.SQL('{} COLLATE "C" LIKE {}').format(text_expr, sql.Literal(f"%%:%%{z}%%"))
            for z in _ZONE_MARKS
        ),
    )


def pg_uuid_text_sql(text_expr: sql.Composable) -> sql.Composable:
    """SQL for the canonical text of the uuid ``text_expr`` (text) spells, without reading it
    as a uuid where it is canonical already: 36 characters, a hyphen at 9, 14, 19 and 24,
    no capital letter. Sound only where the same text is also cast to ``uuid`` (a write's
    cast), whose error stops the batch: a text it accepts in that shape is 32 hex digits
    with those hyphens, which is what ``uuid_out`` prints (~0.3 µs a value less)."""
    return sql.SQL(
        "CASE WHEN {0} COLLATE \"C\" LIKE '________-____-____-____-____________' "
        'AND {0} = lower({0} COLLATE "C") THEN {0} ELSE CAST(CAST({0} AS uuid) AS text) END'
    ).format(text_expr)


def pg_intent_sql(text_expr: sql.Composable, col: ColumnInfo) -> sql.Composable:
    """SQL for the canonical text of the intended value ``text_expr`` (text) in ``col``."""
    return pg_canonical_sql(pg_intent_typed_sql(text_expr, col), col)


def pg_same_sql(
    intended: sql.Composable, stored: sql.Composable, col: ColumnInfo
) -> sql.Composable:
    """SQL true when the stored value ``stored`` of ``col`` is the intended value
    ``intended`` (already read by ``pg_intent_typed_sql``) — the same answer as comparing their
    canonical texts, by a typed comparison where one gives it (no text formatting: the
    read-back of a batch compares every row this way)."""
    kind = _kind(col)
    if kind == "numeric":
        stored = sql.SQL("{}::numeric").format(stored)
    elif kind not in _TYPED_EQUAL:
        return sql.SQL("({} IS NOT DISTINCT FROM {})").format(
            pg_canonical_sql(intended, col), pg_canonical_sql(stored, col)
        )
    return sql.SQL("({} IS NOT DISTINCT FROM {})").format(intended, stored)


# Kinds whose typed equality is exactly equality of canonical text (text compares as text in
# pg_same_sql: a nondeterministic collation may call different strings equal).
_TYPED_EQUAL = frozenset(
    {"integer", "numeric", "boolean", "date", "timestamp", "timestamptz", "uuid", "bpchar"}
)


def pg_hash_sql(
    exprs: Sequence[sql.Composable], nulls: Sequence[sql.Composable] | None = None
) -> sql.Composable:
    """SQL computing hashing.row_hash over text expressions (0x1F-joined, NULL as 0x00);
    ``nulls`` as in ``pg_hash_bytes_sql``."""
    # the hex of the first 16 bytes: the first 32 hex digits of the whole, without hexing 32
    # bytes and cutting a 64-character text (~0.2 µs a row)
    return sql.SQL("encode(substring({} FROM 1 FOR 16), 'hex')").format(
        pg_hash_bytes_sql(exprs, nulls)
    )


def pg_hash_bytes_sql(
    exprs: Sequence[sql.Composable], nulls: Sequence[sql.Composable] | None = None
) -> sql.Composable:
    """SQL for the whole sha256 (bytea) whose first 16 bytes, in hex, are ``pg_hash_sql``.

    ``nulls``: expressions NULL exactly when the matching ``exprs`` are (the values they are
    the canonical text of: ``pg_canonical_sql`` is NULL only of NULL), cheap to test. A row
    with none NULL is then hashed as ONE text joined by chr(31) and converted once — the same
    bytes, since every server encoding converts character by character and keeps 0x1F —
    instead of a convert_to and two bytea concatenations per value (~0.5 µs a row of 12)."""
    parts = [
        sql.SQL("coalesce(convert_to({}, 'UTF8'), decode('00', 'hex'))").format(e) for e in exprs
    ]
    each = sql.SQL("sha256({})").format(sql.SQL(" || decode('1f', 'hex') || ").join(parts))
    if nulls is None:
        return each
    if len(nulls) != len(exprs):
        raise ValueError("one NULL test per hashed expression")
    return sql.SQL(
        "CASE WHEN {none} THEN sha256(convert_to({joined}, 'UTF8')) ELSE {each} END"
    ).format(
        none=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(n) for n in nulls),
        joined=sql.SQL(" || chr(31) || ").join(sql.SQL("({})::text").format(e) for e in exprs),
        each=each,
    )


def pg_stored_hash_sql(alias: str, cols: Sequence[ColumnInfo]) -> sql.Composable:
    """SQL for the row hash of the canonical stored values of ``cols`` of table ``alias``."""
    refs = [sql.Identifier(alias, c.name) for c in cols]
    return pg_hash_sql([pg_canonical_sql(r, c) for r, c in zip(refs, cols, strict=True)], refs)
