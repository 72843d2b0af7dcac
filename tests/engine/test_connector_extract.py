"""Connector contract, run on PostgreSQL and SQLite (``tdb``): key ranges, extract, keys and
duplicates. SQLite-only behaviour lives in test_sqlite_connector.py."""

from __future__ import annotations

import pandas as pd
import pytest

from runs.engine.connectors import KeyRange
from runs.engine.errors import SchemaError
from tests.engine.customer_table import WEIRD, customer_rows, extract_all, load, target_ddl

# ------------------------------------------------------------------ key ranges / extract


def test_key_ranges_cover_every_row_once_for_an_integer_key(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY, v text)")
    for i in range(1, 1002):
        tdb.execute(
            "INSERT INTO src VALUES (%s, 'x')"
            if tdb.kind == "postgresql"
            else "INSERT INTO src VALUES (?, 'x')",
            (i * 3,),
        )
    ranges = tdb.connector.key_ranges("src", ["id"], 100)
    frame = extract_all(tdb.connector, "src", ["id"], ["id"], ranges)
    assert len(ranges) == 11
    assert sorted(int(v) for v in frame["id"]) == [i * 3 for i in range(1, 1002)]


def test_key_ranges_of_an_exact_multiple_of_the_batch_have_no_empty_last_range(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY, v text)")
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for i in range(1, 301):
        tdb.execute(f"INSERT INTO src VALUES ({ph}, 'x')", (i,))
    ranges = tdb.connector.key_ranges("src", ["id"], 100)
    sizes = [len(tdb.connector.extract("src", ["id"], ["id"], r)) for r in ranges]
    assert sizes == [100, 100, 100]
    assert [r.upper for r in ranges][-1] is None


def test_key_ranges_cover_every_row_once_for_a_composite_key(tdb):
    tdb.script("CREATE TABLE src (a integer, b text, v text, PRIMARY KEY (a, b))")
    rows = [(a, b, "x") for a in range(30) for b in ("a", "B", "b", "ä", "z z", "10", "9")]
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for row in rows:
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph}, {ph})", row)
    ranges = tdb.connector.key_ranges("src", ["a", "b"], 13)
    frame = extract_all(tdb.connector, "src", ["a", "b"], ["a", "b"], ranges)
    got = list(zip(frame["a"].map(int), frame["b"], strict=True))
    assert sorted(got) == sorted((a, b) for a, b, _ in rows)
    assert len(set(got)) == len(rows)


def test_key_ranges_cover_every_row_once_for_a_text_key(tdb):
    tdb.script("CREATE TABLE src (code text PRIMARY KEY)")
    codes = [f"k{i}" for i in range(200)] + ["Ärger", "zebra", "Zebra", "a|b", "", " x", "日本"]
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for code in codes:
        tdb.execute(f"INSERT INTO src VALUES ({ph})", (code,))
    ranges = tdb.connector.key_ranges("src", ["code"], 17)
    frame = extract_all(tdb.connector, "src", ["code"], ["code"], ranges)
    assert sorted(frame["code"]) == sorted(codes)
    assert len(frame) == len(codes)


def test_key_ranges_of_an_empty_table_is_empty(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY)")
    assert tdb.connector.key_ranges("src", ["id"], 10) == []


def test_key_ranges_with_changed_since_select_only_newer_rows(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY, updated_at timestamp)")
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for i in range(50):
        stamp = f"2024-01-{1 + i % 28:02d} 10:00:00"
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph})", (i, stamp))
    since = ("updated_at", "2024-01-20 10:00:00")
    ranges = tdb.connector.key_ranges("src", ["id"], 3, changed_since=since)
    frames = [
        tdb.connector.extract("src", ["id", "updated_at"], ["id"], r, changed_since=since)
        for r in ranges
    ]
    frame = pd.concat(frames, ignore_index=True)
    assert sorted(frame["id"].map(int)) == [i for i in range(50) if 1 + i % 28 > 20]


def test_extract_preserves_null_empty_string_and_unicode(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY, v text)")
    values = [
        None,
        "",
        "NULL",
        "\\N",
        '""',
        "a,b",
        'quote " inside',
        "line\nbreak\r\nx",
        "Zoë 日本 🚀",
        "  padded  ",
    ]
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for i, v in enumerate(values):
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph})", (i, v))
    frame = tdb.connector.extract("src", ["id", "v"], ["id"], KeyRange())
    assert frame["v"].tolist() == values
    assert frame["id"].tolist() == [str(i) for i in range(len(values))]
    assert all(dtype is object or dtype == "object" for dtype in frame.dtypes)


def test_pg_extract_text_holds_the_same_values_in_arrow_strings(tpg):
    tpg.script("CREATE TABLE src (id integer PRIMARY KEY, v text)")
    values = [None, "", "NULL", "a,b", 'quote " inside', "line\nbreak", "Zoë 日本 🚀"]
    for i, v in enumerate(values):
        tpg.execute("INSERT INTO src VALUES (%s, %s)", (i, v))
    frame = tpg.connector.extract_text("src", ["id", "v"], ["id"], KeyRange())
    assert str(frame["v"].dtype) == "string"
    assert frame["v"].array.dtype.storage == "pyarrow"
    got = [None if v is pd.NA else v for v in frame["v"].tolist()]
    assert got == values


def test_extract_of_an_unknown_column_raises_schema_error(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY)")
    with pytest.raises(SchemaError, match="nope"):
        tdb.connector.extract("src", ["id", "nope"], ["id"], KeyRange())


def test_extract_of_an_unknown_table_raises_schema_error(tdb):
    with pytest.raises(SchemaError, match="ghost"):
        tdb.connector.count("ghost")


def test_weird_identifiers_are_quoted_on_extract_load_and_checksum(tdb):
    tdb.script(target_ddl(tdb.kind))
    tdb.script('CREATE TABLE "odd ""table""" (id integer PRIMARY KEY, "weird ""name""" text)')
    ph = "%s" if tdb.kind == "postgresql" else "?"
    tdb.execute(f'INSERT INTO "odd ""table""" VALUES (1, {ph})', ("v'1; DROP TABLE x",))
    frame = tdb.connector.extract('odd "table"', ["id", WEIRD], ["id"], KeyRange())
    load(tdb.connector, customer_rows(3))
    stored = tdb.execute('SELECT "weird ""name""" FROM customer ORDER BY ext')
    assert frame[WEIRD].tolist() == ["v'1; DROP TABLE x"]
    assert [r[0] for r in stored] == ["", "w1", "w2"]
    assert tdb.connector.table_checksum('odd "table"', ["id"]).rows == 1


def test_fetch_keys_finds_existing_composite_keys(tdb):
    tdb.script("CREATE TABLE src (a integer, b text, PRIMARY KEY (a, b))")
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for a, b in [(1, "x"), (2, "y|z")]:
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph})", (a, b))
    found = tdb.connector.fetch_keys("src", ["a", "b"], ["1|x", "2|y|z", "3|x", "1|y"])
    assert found == {"1|x", "2|y|z"}


def test_duplicate_values_counts_repeated_values_in_the_database(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY, city text)")
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for i, city in enumerate(["b", "a", "b", None, None, "c", "a", "a"]):
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph})", (i, city))
    assert tdb.connector.duplicate_values("src", "city") == (2, ["a", "b"])
    assert tdb.connector.duplicate_values("src", "city", 1) == (2, ["a"])
    assert tdb.connector.duplicate_values("src", "id") == (0, [])
