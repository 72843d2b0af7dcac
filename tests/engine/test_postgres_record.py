"""The batch record's arrays sent cheaply (runs.engine.connectors.postgres.record): each
literal arrives as the array ``%s::text[]`` makes of it, whatever form it is sent in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _text_array_definition(values) -> str:
    """text_array as it was defined: str() of each value, backslash and quote escaped."""
    quoted = (str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


_VALUES = st.lists(
    st.one_of(st.text(), st.text(alphabet='0123456789abcdef",\\{} '), st.integers(), st.none()),
    max_size=20,
)


@given(values=_VALUES)
@settings(max_examples=400, deadline=None)
def test_text_array_equals_its_definition_for_any_values(values):
    assert text_array(values) == _text_array_definition(values)
    assert text_array(iter(values)) == _text_array_definition(values)
    assert text_array(tuple(values)) == _text_array_definition(values)


def test_pg_a_plain_text_array_round_trips(tpg):
    values = ["", "NULL", "a,b", " pad ", "ä€😀", "x\ny", "{}", "0f3a"]
    for sample in (values, values[:1], values[1:3]):
        literal = text_array(sample)
        assert tpg.execute("SELECT %s::text[]", (literal,))[0][0] == sample
