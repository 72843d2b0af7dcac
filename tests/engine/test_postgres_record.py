"""The batch record's arrays sent cheaply (runs.engine.connectors.postgres.record): each
literal arrives as the array ``%s::text[]`` makes of it, whatever form it is sent in."""

from __future__ import annotations

import pytest

from runs.engine.connectors.postgres.operations import text_array
from runs.engine.connectors.postgres.record import _array_param, insert_record

LITERALS = [
    "{}",
    '{""}',
    '{"",""}',
    text_array(["0f3a", "ffff", "12"]),
    "{abc123,0}",  # PostgreSQL's own output, unquoted
    text_array(["a,b", 'q"uote', "back\\slash", "NULL", " x "]),
    text_array(["ABCDEF"]),  # upper case is not in the plain form
]


@pytest.mark.parametrize("literal", LITERALS)
def test_pg_an_array_literal_arrives_as_text_array_makes_it(tpg, literal):
    expr, param = _array_param(literal)
    got = tpg.execute(f"SELECT {expr}, %s::text[]", (param, literal))
    assert got[0][0] == got[0][1]


def test_a_hash_array_goes_as_plain_text_and_equal_literals_once():
    hashes = text_array(["0123abcd"] * 3)
    keys = text_array(["K1", "K2", "K3"])
    composed, params = insert_record(
        {"run_id": "r", "a": hashes, "b": keys, "c": "".join(hashes), "d": None},
        {"a", "b", "c", "d"},
    )
    query = "".join(part.string for part in composed.seq)
    assert "string_to_array(%s, ',') AS a0, %s::text[] AS a1)" in query
    assert query.endswith(
        "VALUES (%s, (SELECT a0 FROM mp_v), (SELECT a1 FROM mp_v), (SELECT a0 FROM mp_v), %s)"
    )
    assert params == ["0123abcd,0123abcd,0123abcd", keys, "r", None]
