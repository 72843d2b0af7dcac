"""PostgreSQL: the cheaper SQL forms of the row hash and of the intended timestamp give the
answers of the forms they replace, value for value (the ledger's hashes and the proof stay
what they were; old ledgers still verify)."""

from __future__ import annotations

import uuid

import psycopg2
import pytest
from psycopg2 import sql

from runs.engine.canonical import (
    _ZONED,
    pg_hash_bytes_sql,
    pg_hash_sql,
    pg_intent_typed_sql,
    pg_uuid_text_sql,
    pg_zoned_intent_sql,
)
from runs.engine.connectors.base import ColumnInfo
from runs.engine.hashing import row_hash
from tests.engine.conftest import _admin_exec

ROWS = [  # every NULL pattern, empty texts, the separator and a NUL-free control in a value
    ("a", "b", "c"),
    ("", "", ""),
    (None, None, None),
    ("x", None, "z"),
    (None, "é", ""),
    ("a\x1fb", "\\", "line\nbreak\t"),
    ("ß 😀", "ø", " "),
    ("ñ", None, None),
]
LATIN1_ROWS = [r for r in ROWS if "😀" not in "".join(v or "" for v in r)]


def _hashes(cur, rows, *, nulls: bool, raw: bool = False) -> list[str]:
    """The server's hash of each row of three text values, by the form asked for."""
    refs = [sql.Identifier("v", f"c{i}") for i in range(3)]
    hashed = (pg_hash_bytes_sql if raw else pg_hash_sql)(refs, refs if nulls else None)
    cur.execute(
        sql.SQL(
            "SELECT {h} FROM unnest(%s::text[], %s::text[], %s::text[]) "
            "WITH ORDINALITY AS v(c0, c1, c2, n) ORDER BY v.n"
        ).format(h=hashed),
        [list(col) for col in zip(*rows, strict=True)],
    )
    got = [r[0] for r in cur.fetchall()]
    return [bytes(h).hex()[:32] for h in got] if raw else got


def test_pg_hash_of_a_row_without_null_as_one_text_is_the_row_hash(tpg):
    """A row with no NULL is hashed as one chr(31)-joined text: the same hash as value by
    value and as hashing.row_hash; rows with a NULL keep the value-by-value form."""
    cur = tpg._raw.cursor()
    expected = [row_hash(r) for r in ROWS]
    assert _hashes(cur, ROWS, nulls=True) == expected
    assert _hashes(cur, ROWS, nulls=False) == expected
    assert _hashes(cur, ROWS, nulls=True, raw=True) == expected


def test_pg_hash_as_one_text_on_a_latin1_server_is_the_utf8_row_hash():
    """On a server that is not UTF8, converting the joined text gives the bytes converting
    each value gives (one character at a time; 0x1F is 0x1F in every server encoding)."""
    from tests.engine.conftest import pg_admin_params

    name = f"engine_latin1_{uuid.uuid4().hex[:12]}"
    _admin_exec(
        f"CREATE DATABASE \"{name}\" ENCODING 'LATIN1' TEMPLATE template0 "
        "LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    try:
        conn = psycopg2.connect(**{**pg_admin_params(), "dbname": name})
        try:
            cur = conn.cursor()
            cur.execute("SHOW server_encoding")
            assert cur.fetchone() == ("LATIN1",)
            expected = [row_hash(r) for r in LATIN1_ROWS]
            assert _hashes(cur, LATIN1_ROWS, nulls=True) == expected
            assert _hashes(cur, LATIN1_ROWS, nulls=False) == expected
        finally:
            conn.close()
    finally:
        _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_pg_hash_needs_one_null_test_per_value():
    refs = [sql.Identifier("c0"), sql.Identifier("c1")]
    with pytest.raises(ValueError, match="one NULL test"):
        pg_hash_sql(refs, refs[:1])


TIMESTAMP_TEXTS = [
    "2024-01-02 10:11:12",
    "2024-01-02T10:11:12",
    "2024-01-02T10:11:12.5",
    "2024-01-02",
    "2024-01-02T10:11:12Z",
    "2024-01-02T10:11:12z",
    "2024-01-02 10:11:12+02",
    "2024-01-02 10:11:12-08",
    "2024-01-02 10:11:12 -0530",
    "2024-01-02 10:11:12+05:30",
    "2024-01-02T10:11Z ",
    "2024-01-02 10:11:12.123456+00\t",
    "2024-01-02 10:11:12 Z",
    "2024-01-02 10:11:12 America/New_York",
    "2024-01-02 10:11:12 UTC",
    "Jan 2 2024 10:11:12",
    "infinity",
    "-infinity",
    "epoch",
    None,
]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_pg_intended_timestamp_guarded_is_the_regex_answer(tpg, zone):
    """The LIKE guard before the zone regex changes no intended value: a text the regex
    calls zoned always has a zone letter or sign after a ':', and the rest read alike."""
    col = ColumnInfo(
        name="v",
        data_type="timestamp without time zone",
        cast_type="timestamp without time zone",
        base_type="timestamp without time zone",
    )
    text = sql.Identifier("u", "v")
    guarded = pg_intent_typed_sql(text, col)
    plain = sql.SQL(
        "CASE WHEN {0} ~ {1} THEN CAST({0} AS timestamptz) AT TIME ZONE "
        "current_setting('TimeZone') ELSE CAST({0} AS timestamp) END"
    ).format(text, sql.Literal(_ZONED))
    assert "LIKE" in guarded.as_string(tpg._raw)
    cur = tpg._raw.cursor()
    cur.execute(sql.SQL("SET TimeZone = {}").format(sql.Literal(zone)))
    cur.execute(
        sql.SQL(
            "SELECT u.v, ({g})::text, ({p})::text, ({g}) IS NOT DISTINCT FROM ({p}) "
            "FROM unnest(%s::text[]) AS u(v)"
        ).format(g=guarded, p=plain),
        [TIMESTAMP_TEXTS],
    )
    rows = cur.fetchall()
    assert len(rows) == len(TIMESTAMP_TEXTS)
    assert [r for r in rows if not r[3]] == []
    read = {r[0]: r[1] for r in rows}
    if zone == "UTC":  # the regex's branch still runs where a zone is written
        assert read["2024-01-02 10:11:12+02"] == "2024-01-02 08:11:12"
        assert read["2024-01-02 10:11:12 America/New_York"] == "2024-01-02 10:11:12"


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_pg_zoned_intent_or_the_plain_cast_is_the_intended_timestamp(tpg, zone):
    """The as-written compare casts a ``timestamp`` text once (the INSERT's cast) and reads
    the instant apart only where the text names one: coalesced, that is the intended value,
    and where it is NULL the intended value is the plain cast (compared by construction)."""
    col = ColumnInfo(
        name="v",
        data_type="timestamp without time zone",
        cast_type="timestamp without time zone",
        base_type="timestamp without time zone",
    )
    text = sql.Identifier("u", "v")
    zoned = pg_zoned_intent_sql(text, col)
    assert (
        pg_zoned_intent_sql(text, ColumnInfo(name="v", data_type="uuid", cast_type="uuid")) is None
    )
    cur = tpg._raw.cursor()
    cur.execute(sql.SQL("SET TimeZone = {}").format(sql.Literal(zone)))
    cur.execute(
        sql.SQL(
            "SELECT u.v, coalesce({z}, CAST(u.v AS timestamp)) IS NOT DISTINCT FROM ({i}), "
            "{z} IS NOT NULL FROM unnest(%s::text[]) AS u(v)"
        ).format(z=zoned, i=pg_intent_typed_sql(text, col)),
        [TIMESTAMP_TEXTS],
    )
    rows = cur.fetchall()
    assert [r for r in rows if not r[1]] == []
    assert sum(r[2] for r in rows) == 9  # the texts with a zone letter or an offset


UUID_TEXTS = [
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  # canonical: taken as it is
    "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380A11",
    "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
    "a0eebc999c0b4ef8bb6d6bb9bd380a11",
    "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
    "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11",
    "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
    "00000000-0000-0000-0000-000000000000",
    None,
]


def test_pg_uuid_text_is_the_canonical_text_of_every_uuid_spelling(tpg):
    """A uuid text in the canonical shape is taken as it is, any other spelling is read and
    printed: the canonical text either way."""
    cur = tpg._raw.cursor()
    cur.execute(
        sql.SQL(
            "SELECT u.v, {t}, CAST(CAST(u.v AS uuid) AS text) FROM unnest(%s::text[]) AS u(v)"
        ).format(t=pg_uuid_text_sql(sql.Identifier("u", "v"))),
        [UUID_TEXTS],
    )
    rows = cur.fetchall()
    assert len(rows) == len(UUID_TEXTS)
    assert [r for r in rows if r[1] != r[2]] == []
