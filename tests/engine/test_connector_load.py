"""Connector contract, run on PostgreSQL and SQLite (``tdb``): loading batches, the ledger and
row validation (plus the PostgreSQL ledger's keymap and packed failures)."""

from __future__ import annotations

import json
import zlib

import pandas as pd
import pytest

from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import pack_failures, unpack_failures
from runs.engine.errors import SchemaError
from runs.engine.hashing import row_hash
from runs.engine.rules import TEXT
from tests.engine.customer_table import WEIRD, customer_entity, customer_rows, load, target_ddl

# ------------------------------------------------------------------ load / ledger


def test_load_batch_twice_leaves_target_unchanged_and_reports_already_done(tdb):
    tdb.script(target_ddl(tdb.kind))
    first = load(tdb.connector, customer_rows(50))
    after_first = tdb.connector.table_checksum("customer", ["id"])
    second = load(tdb.connector, customer_rows(50, name="changed"))
    assert (first.inserted, first.updated, first.already_done) == (50, 0, False)
    assert (second.inserted, second.already_done, second.result_meta) == (50, True, {"note": "b1"})
    assert tdb.connector.table_checksum("customer", ["id"]) == after_first
    assert tdb.connector.ledger_batches("run-1") == ["b1"]


def test_load_batch_recreates_a_ledger_dropped_since_the_connector_last_used_it(tdb):
    tdb.script(target_ddl(tdb.kind))
    load(tdb.connector, customer_rows(2), run="r0")
    if tdb.kind == "postgresql":
        tdb.script("DROP SCHEMA mp_ledger CASCADE")
    else:
        tdb.script(
            "DROP TABLE mp_ledger_batch; DROP TABLE mp_ledger_row; DROP TABLE mp_ledger_keymap"
        )
    result = load(tdb.connector, customer_rows(2, start=2), run="r1")
    assert (result.inserted, result.already_done) == (2, False)
    assert tdb.connector.ledger_batches("r1") == ["b1"]


def test_load_batch_upsert_records_before_images_of_overwritten_rows(tdb):
    tdb.script(target_ddl(tdb.kind))
    load(tdb.connector, customer_rows(4), run="r0")
    result = load(tdb.connector, customer_rows(6, start=2, name="new"), run="r1")
    ledger = tdb.execute(
        "SELECT target_key, action, before_image FROM "
        + ("mp_ledger.written" if tdb.kind == "postgresql" else "mp_ledger_row")
        + " WHERE run_id = 'r1' ORDER BY target_key"
    )
    updates = {r[0]: r[2] for r in ledger if r[1] == "update"}
    assert (result.inserted, result.updated) == (4, 2)
    assert sorted(updates) == ["3", "4"]
    images = [u if isinstance(u, dict) else json.loads(u) for u in updates.values()]
    assert sorted(i["name"] for i in images) == ["n2", "n3"]


def test_load_batch_insert_mode_keymap_and_row_hashes(tdb):
    tdb.script(target_ddl(tdb.kind))
    rows = customer_rows(5)
    load(tdb.connector, rows, mode="insert")
    keymap = tdb.connector.keymap_lookup("plan", "customer", ["E00000", "E00004", "nope"])
    hashes = tdb.connector.row_hashes(
        "customer", "ext", ["E00001"], columns=["ext", "name", "age", WEIRD]
    )
    ledger_table = "mp_ledger.written" if tdb.kind == "postgresql" else "mp_ledger_row"
    stored = tdb.execute(f"SELECT row_hash FROM {ledger_table} WHERE target_key = '2'")
    assert keymap == {"E00000": "1", "E00004": "5"}
    assert hashes == {"E00001": row_hash(["E00001", "n1", "1", "w1"])}
    assert stored == [(hashes["E00001"],)]


def test_load_batch_writes_arrow_text_rows_as_it_writes_object_rows(tdb):
    """The engine hands load_batch Arrow-backed TEXT columns (NA for missing): NULL stays NULL,
    '' stays '', quotes, commas, newlines and non-ASCII survive, as from str/None columns."""
    tdb.script(target_ddl(tdb.kind))
    odd = ["", None, 'say "hi", ok', "two\nlines", "é 😀 \\ \t", "x" * 40]
    obj = customer_rows(6)
    obj[WEIRD] = pd.Series(odd, dtype=object)
    arrow = customer_rows(6, start=6)
    arrow[WEIRD] = pd.Series(odd, dtype=TEXT)
    arrow = arrow.astype(TEXT)
    assert all(isinstance(arrow[c].array, pd.arrays.ArrowStringArray) for c in arrow.columns)
    load(tdb.connector, obj, batch="b-object")
    load(tdb.connector, arrow, batch="b-arrow")
    got = tdb.execute(
        f'SELECT ext, age, "{WEIRD.replace(chr(34), chr(34) * 2)}" FROM customer ORDER BY ext'
    )
    by_source = [(age, weird) for _, age, weird in got]
    assert by_source[:6] == [
        (None if a is None else int(a), w) for a, w in zip(obj["age"], odd, strict=True)
    ]
    assert by_source[6:] == [
        (None if pd.isna(a) else int(a), w) for a, w in zip(arrow["age"], odd, strict=True)
    ]


def test_validate_rows_gives_the_same_answer_for_arrow_text_and_object_columns(tpg):
    """Canonical UUIDs are accepted in Arrow; every other spelling still goes through the
    per-value check (braces, no hyphens, spaces: accepted; the rest: type_cast)."""
    tpg.script("CREATE TABLE t (id serial PRIMARY KEY, u uuid, v varchar(3) NOT NULL)")
    u = [
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "{0F8FAD5B-D9CB-469F-A165-70867728950E}",
        "0f8fad5bd9cb469fa16570867728950e",
        " 0f8fad5b-d9cb-469f-a165-70867728950e ",
        "0f8fad5b-d9cb-469f-a165-70867728950",
        "not a uuid",
        None,
        "",
    ]
    v = ["abc", "abcd", None, "é" * 3, "", "ab", "x", "y"]
    obj = text_frame(["u", "v"], {"u": u, "v": v})
    got = {
        dtype: {
            i: (e[0].field, e[0].category, e[0].value)
            for i, e in tpg.connector.validate_rows("t", frame).items()
        }
        for dtype, frame in (("object", obj), ("text", obj.astype(TEXT)))
    }
    assert (
        got["text"]
        == got["object"]
        == {
            1: ("v", "too_long", "abcd"),
            2: ("v", "required_missing", None),
            4: ("u", "type_cast", u[4]),
            5: ("u", "type_cast", "not a uuid"),
            7: ("u", "type_cast", ""),
        }
    )


def test_pg_keymap_pairs_wait_in_the_batch_record_until_the_first_lookup(tpg):
    tpg.script(target_ddl("postgresql"))
    load(tpg.connector, customer_rows(3), run="r0", batch="b1")
    load(tpg.connector, customer_rows(2, start=3), run="r0", batch="b2")
    assert tpg.execute("SELECT count(*) FROM mp_ledger.keymap") == [(0,)]
    keymap = tpg.connector.keymap_lookup("plan", "customer", ["E00000", "E00004"])
    assert keymap == {"E00000": "1", "E00004": "5"}
    assert tpg.execute("SELECT batch_id, count(*) FROM mp_ledger.keymap GROUP BY 1 ORDER BY 1") == [
        ("b1", 3),
        ("b2", 2),
    ]
    assert tpg.execute("SELECT count(*) FROM mp_ledger.batch WHERE keymap_source IS NOT NULL") == [
        (0,)
    ]
    # a later run mapping the same keys to the same rows keeps the first creator
    load(tpg.connector, customer_rows(3, name="m"), run="r1", batch="b1")
    tpg.connector.keymap_lookup("plan", "customer", ["E00000"])
    assert tpg.execute("SELECT DISTINCT run_id FROM mp_ledger.keymap") == [("r0",)]


def test_pg_rollback_of_a_batch_whose_keymap_was_never_looked_up_leaves_no_pairs(tpg):
    tpg.script(target_ddl("postgresql"))
    load(tpg.connector, customer_rows(4), run="r0", batch="b1")
    result = tpg.connector.rollback_batch("r0", "b1")
    assert (result.deleted, result.keymap_deleted) == (4, 0)
    assert tpg.connector.keymap_lookup("plan", "customer", ["E00000"]) == {}


def test_pg_failures_are_stored_packed_and_come_back_on_a_retry(tpg):
    tpg.script(target_ddl("postgresql"))
    failures = [{"source_key": f"K{i}", "source_row": {"name": "é" * i}} for i in range(300)]
    meta = {"extracted": 303, "failures": failures}
    tpg.connector.load_batch(
        entity=customer_entity(),
        rows=customer_rows(3),
        source_keys=["E00000", "E00001", "E00002"],
        run_id="r",
        batch_id="b",
        namespace="plan",
        result_meta=meta,
    )
    stored = tpg.execute(
        "SELECT result_meta, octet_length(failures), substr(failures, 1, 4) FROM mp_ledger.batch"
    )
    assert stored[0][0] == {"extracted": 303}
    assert 0 < stored[0][1] < len(json.dumps(failures)) / 4
    assert bytes(stored[0][2]) == b"MPz1"  # zstd-packed
    assert tpg.connector.batch_result("r", "b").result_meta == meta
    # a ledger written before (zlib-packed failures) still gives them back on a retry
    old = zlib.compress(json.dumps(failures).encode(), 1)
    tpg.execute("UPDATE mp_ledger.batch SET failures = %s", (old,))
    assert tpg.connector.batch_result("r", "b").result_meta == meta


def test_pack_failures_round_trips_any_json_value():
    failures = [
        {
            "source_key": "k",
            "source_row": {"a": None, "b": "", "c": "é😀\x00\n"},
            "transformed_row": {},
            "stage": "load",
            "errors": [{"value": 1.5}],
        }
    ] * 50
    assert unpack_failures(pack_failures(failures)) == failures
    assert unpack_failures(pack_failures([])) == []


def test_validate_rows_flags_too_long_not_null_and_bad_casts(tdb):
    tdb.script(target_ddl(tdb.kind))
    frame = text_frame(
        ["ext", "name", "age", "born"],
        {
            "ext": ["a", "b", "c", "d", "e", "f"],
            "name": ["ok", "x" * 11, None, "ok", "ok", "ok"],
            "age": ["42", "1", "1", "4.5", "99999999999", None],
            "born": ["2020-02-29", None, None, None, None, "2021-02-30"],
        },
    )
    errors = tdb.connector.validate_rows("customer", frame)
    got = {i: [(e.field, e.category) for e in row] for i, row in errors.items()}
    assert got == {
        1: [("name", "too_long")],
        2: [("name", "required_missing")],
        3: [("age", "type_cast")],
        4: [("age", "type_cast")],
        5: [("born", "type_cast")],
    }


def test_validate_rows_names_every_refused_column_of_a_row(tdb):
    """A row refused by two columns carries both errors (the queue shows every failing rule)."""
    tdb.script(target_ddl(tdb.kind))
    frame = text_frame(
        ["ext", "name", "age", "born"],
        {
            "ext": ["a", "b"],
            "name": ["x" * 11, "ok"],
            "age": ["4.5", "1"],
            "born": ["2021-02-30", None],
        },
    )
    errors = tdb.connector.validate_rows("customer", frame)
    assert {i: [(e.field, e.category) for e in row] for i, row in errors.items()} == {
        0: [("name", "too_long"), ("age", "type_cast"), ("born", "type_cast")]
    }


def test_validate_rows_refuses_what_a_json_column_cannot_hold(tdb):
    """Found by the oracle test: a json column took any text (PostgreSQL then failed the whole
    batch on '{a:1}'); invalid JSON is now a type_cast failure of its row, on both targets."""
    tdb.script("CREATE TABLE j (id integer PRIMARY KEY, doc json, docb jsonb)")
    good = ['{"a": 1}', "[1, 2]", '"s"', "1", "null", " true ", None, '{"a":1,"a":2}']
    bad = ["{a:1}", "", "[1,", "nul", "NaN", "Infinity", "{'a': 1}", "1 2"]
    frame = text_frame(["doc", "docb"], {"doc": good + bad, "docb": good + bad})
    errors = tdb.connector.validate_rows("j", frame)
    assert sorted(errors) == list(range(len(good), len(good) + len(bad)))
    assert {(e.field, e.category) for row in errors.values() for e in row} == {
        ("doc", "type_cast"),
        ("docb", "type_cast"),
    }


def test_validate_rows_refuses_unicode_digits_in_number_columns(tdb):
    """Found with the oracle test's values: '١٢' (Arabic-Indic digits) passed the integer and
    numeric checks (Python's \\d), and PostgreSQL then failed the whole batch; SQLite stored
    the text in a number column. Number columns take ASCII digits only."""
    tdb.script("CREATE TABLE n (id integer PRIMARY KEY, i integer, d numeric(8,2))")
    frame = text_frame(
        ["i", "d"],
        {"i": ["12", "١٢", "٣", " 7 ", "\u00a07"], "d": ["1.5", "١.٥", "12", "٣", "\t2.5\n"]},
    )
    errors = tdb.connector.validate_rows("n", frame)
    assert {k: [e.field for e in v] for k, v in errors.items()} == {
        1: ["i", "d"],
        2: ["i"],
        3: ["d"],
        4: ["i"],
    }


def test_validate_rows_counts_characters_not_bytes_and_takes_non_text_values(tdb):
    tdb.script(target_ddl(tdb.kind))
    text = text_frame(["ext", "name"], {"ext": ["a", "b", "c"], "name": ["é" * 10, "é" * 11, None]})
    errors = tdb.connector.validate_rows("customer", text)
    assert {i: e[0].category for i, e in errors.items()} == {1: "too_long", 2: "required_missing"}
    mixed = pd.DataFrame({"ext": ["a", "b"], "name": [12345678901, 42]}, dtype=object)
    errors = tdb.connector.validate_rows("customer", mixed)  # ints: the pandas path
    assert {i: e[0].category for i, e in errors.items()} == {0: "too_long"}


def test_validate_rows_with_an_unknown_column_raises_schema_error(tdb):
    tdb.script(target_ddl(tdb.kind))
    with pytest.raises(SchemaError, match="shoe_size"):
        tdb.connector.validate_rows("customer", text_frame(["shoe_size"], {"shoe_size": ["1"]}))


def test_load_batch_with_an_unknown_column_raises_schema_error(tdb):
    tdb.script(target_ddl(tdb.kind))
    rows = text_frame(["ext", "shoe_size"], {"ext": ["a"], "shoe_size": ["1"]})
    with pytest.raises(SchemaError, match="shoe_size"):
        tdb.connector.load_batch(
            entity=customer_entity(),
            rows=rows,
            source_keys=["a"],
            run_id="r",
            batch_id="b",
            namespace="p",
            result_meta={},
        )
