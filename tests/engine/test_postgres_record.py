"""The batch record's arrays sent cheaply (runs.engine.connectors.postgres.record): each
literal arrives as the array ``%s::text[]`` makes of it, whatever form it is sent in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.connectors.postgres.operations import text_array
from runs.engine.connectors.postgres.record import (
    HexArray,
    _array_param,
    array_value,
    insert_record,
)

LITERALS = [
    "{}",
    '{""}',
    '{"",""}',
    text_array(["0f3a", "ffff", "12"]),
    "{abc123,0}",  # PostgreSQL's own output, unquoted
    text_array(["a,b", 'q"uote', "back\\slash", "NULL", " x "]),
    text_array(["ABCDEF"]),  # upper case is not in the plain form
    text_array(["12,34", "ab"]),  # an element's own comma: two elements, not three
    text_array(["1,", ",", "0"]),
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


_HEXISH = st.lists(
    st.one_of(
        st.text(alphabet="0123456789abcdef", max_size=8),
        st.text(alphabet='0123456789abcdefABx,"\\ ', max_size=6),
    ),
    max_size=12,
)


@given(values=_HEXISH)
@settings(max_examples=300, deadline=None)
def test_array_value_is_a_hex_array_only_where_string_to_array_gives_the_elements(values):
    value = array_value(values)
    if isinstance(value, HexArray):
        assert value.plain.split(",") == values  # what string_to_array splits back
        assert value.literal() == text_array(values)
    else:
        assert value == text_array(values)


def test_pg_a_hex_array_arrives_as_its_literal_and_the_statement_is_the_literals(tpg):
    """The record's INSERT with ``array_value``s is byte for byte the one with ``text_array``
    literals (each hex array sent as the same quoted plain text), and arrives as the arrays."""
    cases = [
        ["0123abcd", "ffff", "12"],
        ["12,34", "ab"],  # an element's comma: a literal, not a HexArray
        ["", "0"],
        ["a", ""],
        [","],
        ["K1", "0"],
        [""],
        [],
    ]
    cur = tpg._raw.cursor()
    for values in cases:
        new = insert_record({"run_id": "r", "a": array_value(values)}, {"a"})
        old = insert_record({"run_id": "r", "a": text_array(values)}, {"a"})
        assert cur.mogrify(*new) == cur.mogrify(*old), values
        expr, param = _array_param(array_value(values))
        assert tpg.execute(f"SELECT {expr}", (param,))[0][0] == values


def test_equal_hex_arrays_go_once():
    hashes = ["0123abcd"] * 3
    composed, params = insert_record(
        {"a": array_value(hashes), "b": array_value(list(hashes)), "c": text_array(hashes)},
        {"a", "b", "c"},
    )
    query = "".join(part.string for part in composed.seq)
    assert query.count("string_to_array(") == 2  # the HexArray once, the literal once
    assert params[1] == "0123abcd,0123abcd,0123abcd"  # the literal's plain text
