"""Connector contract tests, run on PostgreSQL and SQLite (``tdb``), plus PostgreSQL specifics.

SQLite-only behaviour lives in test_sqlite_connector.py.
"""

from __future__ import annotations

import json
import threading
import time
import zlib

import pandas as pd
import psycopg2
import pyarrow as pa
import pytest

from runs.engine.connectors import KeyRange, connect
from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import pack_failures, unpack_failures
from runs.engine.errors import SchemaError, TransientError
from runs.engine.hashing import arrow_row_hashes, row_hash
from runs.engine.rules import TEXT
from runs.engine.snapshot import EntitySpec, FieldSpec

WEIRD = 'weird "name"'


def target_ddl(kind: str) -> str:
    key = "id serial PRIMARY KEY" if kind == "postgresql" else "id INTEGER PRIMARY KEY"
    return (f'CREATE TABLE customer ({key}, ext varchar(20) NOT NULL UNIQUE, '
            f'name varchar(10) NOT NULL, age integer, born date, "weird ""name""" text)')


def customer_entity(mode: str = "upsert") -> EntitySpec:
    fields = tuple(FieldSpec(target=c, sources=(c,)) for c in ("ext", "name", "age", WEIRD))
    return EntitySpec(name="customer", source_table="src", target_table="customer",
                      source_key=("ext",), target_key="id", external_id="ext", load_mode=mode,
                      fields=fields)


def customer_rows(n: int, *, start: int = 0, name: str = "n") -> pd.DataFrame:
    ids = [f"E{i:05d}" for i in range(start, start + n)]
    return text_frame(["ext", "name", "age", WEIRD], {
        "ext": ids, "name": [f"{name}{i}" for i in range(n)],
        "age": [str(i % 90) if i % 7 else None for i in range(n)],
        WEIRD: ["" if i % 5 == 0 else f"w{i}" for i in range(n)],
    })


def load(conn, rows, *, run="run-1", batch="b1", mode="upsert"):
    return conn.load_batch(entity=customer_entity(mode), rows=rows,
                           source_keys=list(rows["ext"]), run_id=run, batch_id=batch,
                           namespace="plan", result_meta={"note": batch})


def extract_all(conn, table, columns, key_cols, ranges):
    frames = [conn.extract(table, columns, key_cols, r) for r in ranges]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------ key ranges / extract

def test_key_ranges_cover_every_row_once_for_an_integer_key(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY, v text)")
    for i in range(1, 1002):
        tdb.execute("INSERT INTO src VALUES (%s, 'x')" if tdb.kind == "postgresql"
                    else "INSERT INTO src VALUES (?, 'x')", (i * 3,))
    ranges = tdb.connector.key_ranges("src", ["id"], 100)
    frame = extract_all(tdb.connector, "src", ["id"], ["id"], ranges)
    assert len(ranges) == 11
    assert sorted(int(v) for v in frame["id"]) == [i * 3 for i in range(1, 1002)]


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
    frames = [tdb.connector.extract("src", ["id", "updated_at"], ["id"], r, changed_since=since)
              for r in ranges]
    frame = pd.concat(frames, ignore_index=True)
    assert sorted(frame["id"].map(int)) == [i for i in range(50) if 1 + i % 28 > 20]


def test_extract_preserves_null_empty_string_and_unicode(tdb):
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY, v text)")
    values = [None, "", "NULL", "\\N", '""', "a,b", 'quote " inside', "line\nbreak\r\nx",
              "Zoë 日本 🚀", "  padded  "]
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
        tdb.script("DROP TABLE mp_ledger_batch; DROP TABLE mp_ledger_row; "
                   "DROP TABLE mp_ledger_keymap")
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
        + " WHERE run_id = 'r1' ORDER BY target_key")
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
    hashes = tdb.connector.row_hashes("customer", "ext", ["E00001"],
                                      columns=["ext", "name", "age", WEIRD])
    ledger_table = "mp_ledger.written" if tdb.kind == "postgresql" else "mp_ledger_row"
    stored = tdb.execute(f"SELECT row_hash FROM {ledger_table} WHERE target_key = '2'")
    assert keymap == {"E00000": "1", "E00004": "5"}
    assert hashes == {"E00001": row_hash(["E00001", "n1", "1", "w1"])}
    assert stored == [(hashes["E00001"],)]


def test_load_batch_writes_arrow_text_rows_as_it_writes_object_rows(tdb):
    """The engine hands load_batch Arrow-backed TEXT columns (NA for missing): NULL stays NULL,
    '' stays '', quotes, commas, newlines and non-ASCII survive, as from str/None columns."""
    tdb.script(target_ddl(tdb.kind))
    odd = ['', None, 'say "hi", ok', "two\nlines", "é 😀 \\ \t", "x" * 40]
    obj = customer_rows(6)
    obj[WEIRD] = pd.Series(odd, dtype=object)
    arrow = customer_rows(6, start=6)
    arrow[WEIRD] = pd.Series(odd, dtype=TEXT)
    arrow = arrow.astype(TEXT)
    assert all(isinstance(arrow[c].array, pd.arrays.ArrowStringArray) for c in arrow.columns)
    load(tdb.connector, obj, batch="b-object")
    load(tdb.connector, arrow, batch="b-arrow")
    got = tdb.execute(f'SELECT ext, age, "{WEIRD.replace(chr(34), chr(34) * 2)}" FROM customer '
                      "ORDER BY ext")
    by_source = [(age, weird) for _, age, weird in got]
    assert by_source[:6] == [(None if a is None else int(a), w)
                             for a, w in zip(obj["age"], odd, strict=True)]
    assert by_source[6:] == [(None if pd.isna(a) else int(a), w)
                             for a, w in zip(arrow["age"], odd, strict=True)]


def test_validate_rows_gives_the_same_answer_for_arrow_text_and_object_columns(tpg):
    """Canonical UUIDs are accepted in Arrow; every other spelling still goes through the
    per-value check (braces, no hyphens, spaces: accepted; the rest: type_cast)."""
    tpg.script("CREATE TABLE t (id serial PRIMARY KEY, u uuid, v varchar(3) NOT NULL)")
    u = ["0f8fad5b-d9cb-469f-a165-70867728950e", "{0F8FAD5B-D9CB-469F-A165-70867728950E}",
         "0f8fad5bd9cb469fa16570867728950e", " 0f8fad5b-d9cb-469f-a165-70867728950e ",
         "0f8fad5b-d9cb-469f-a165-70867728950", "not a uuid", None, ""]
    v = ["abc", "abcd", None, "é" * 3, "", "ab", "x", "y"]
    obj = text_frame(["u", "v"], {"u": u, "v": v})
    got = {dtype: {i: (e[0].field, e[0].category, e[0].value)
                   for i, e in tpg.connector.validate_rows("t", frame).items()}
           for dtype, frame in (("object", obj), ("text", obj.astype(TEXT)))}
    assert got["text"] == got["object"] == {
        1: ("v", "too_long", "abcd"), 2: ("v", "required_missing", None),
        4: ("u", "type_cast", u[4]), 5: ("u", "type_cast", "not a uuid"),
        7: ("u", "type_cast", "")}


def test_pg_keymap_pairs_wait_in_the_batch_record_until_the_first_lookup(tpg):
    tpg.script(target_ddl("postgresql"))
    load(tpg.connector, customer_rows(3), run="r0", batch="b1")
    load(tpg.connector, customer_rows(2, start=3), run="r0", batch="b2")
    assert tpg.execute("SELECT count(*) FROM mp_ledger.keymap") == [(0,)]
    keymap = tpg.connector.keymap_lookup("plan", "customer", ["E00000", "E00004"])
    assert keymap == {"E00000": "1", "E00004": "5"}
    assert tpg.execute(
        "SELECT batch_id, count(*) FROM mp_ledger.keymap GROUP BY 1 ORDER BY 1"
    ) == [("b1", 3), ("b2", 2)]
    assert tpg.execute(
        "SELECT count(*) FROM mp_ledger.batch WHERE keymap_source IS NOT NULL") == [(0,)]
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
    tpg.connector.load_batch(entity=customer_entity(), rows=customer_rows(3),
                             source_keys=["E00000", "E00001", "E00002"], run_id="r",
                             batch_id="b", namespace="plan", result_meta=meta)
    stored = tpg.execute("SELECT result_meta, octet_length(failures), "
                         "substr(failures, 1, 4) FROM mp_ledger.batch")
    assert stored[0][0] == {"extracted": 303}
    assert 0 < stored[0][1] < len(json.dumps(failures)) / 4
    assert bytes(stored[0][2]) == b"MPz1"  # zstd-packed
    assert tpg.connector.batch_result("r", "b").result_meta == meta
    # a ledger written before (zlib-packed failures) still gives them back on a retry
    old = zlib.compress(json.dumps(failures).encode(), 1)
    tpg.execute("UPDATE mp_ledger.batch SET failures = %s", (old,))
    assert tpg.connector.batch_result("r", "b").result_meta == meta


def test_pack_failures_round_trips_any_json_value():
    failures = [{"source_key": "k", "source_row": {"a": None, "b": "", "c": "é😀\x00\n"},
                 "transformed_row": {}, "stage": "load", "errors": [{"value": 1.5}]}] * 50
    assert unpack_failures(pack_failures(failures)) == failures
    assert unpack_failures(pack_failures([])) == []


def test_validate_rows_flags_too_long_not_null_and_bad_casts(tdb):
    tdb.script(target_ddl(tdb.kind))
    frame = text_frame(["ext", "name", "age", "born"], {
        "ext": ["a", "b", "c", "d", "e", "f"],
        "name": ["ok", "x" * 11, None, "ok", "ok", "ok"],
        "age": ["42", "1", "1", "4.5", "99999999999", None],
        "born": ["2020-02-29", None, None, None, None, "2021-02-30"],
    })
    errors = tdb.connector.validate_rows("customer", frame)
    got = {i: [(e.field, e.category) for e in row] for i, row in errors.items()}
    assert got == {1: [("name", "too_long")], 2: [("name", "required_missing")],
                   3: [("age", "type_cast")], 4: [("age", "type_cast")],
                   5: [("born", "type_cast")]}


def test_validate_rows_names_every_refused_column_of_a_row(tdb):
    """A row refused by two columns carries both errors (the queue shows every failing rule)."""
    tdb.script(target_ddl(tdb.kind))
    frame = text_frame(["ext", "name", "age", "born"], {
        "ext": ["a", "b"], "name": ["x" * 11, "ok"], "age": ["4.5", "1"],
        "born": ["2021-02-30", None]})
    errors = tdb.connector.validate_rows("customer", frame)
    assert {i: [(e.field, e.category) for e in row] for i, row in errors.items()} == {
        0: [("name", "too_long"), ("age", "type_cast"), ("born", "type_cast")]}


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
        ("doc", "type_cast"), ("docb", "type_cast")}


def test_validate_rows_refuses_unicode_digits_in_number_columns(tdb):
    """Found with the oracle test's values: '١٢' (Arabic-Indic digits) passed the integer and
    numeric checks (Python's \\d), and PostgreSQL then failed the whole batch; SQLite stored
    the text in a number column. Number columns take ASCII digits only."""
    tdb.script("CREATE TABLE n (id integer PRIMARY KEY, i integer, d numeric(8,2))")
    frame = text_frame(["i", "d"], {"i": ["12", "١٢", "٣", " 7 ", "\u00a07"],
                                    "d": ["1.5", "١.٥", "12", "٣", "\t2.5\n"]})
    errors = tdb.connector.validate_rows("n", frame)
    assert {k: [e.field for e in v] for k, v in errors.items()} == {
        1: ["i", "d"], 2: ["i"], 3: ["d"], 4: ["i"]}


def test_validate_rows_counts_characters_not_bytes_and_takes_non_text_values(tdb):
    tdb.script(target_ddl(tdb.kind))
    text = text_frame(["ext", "name"], {"ext": ["a", "b", "c"],
                                        "name": ["é" * 10, "é" * 11, None]})
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
        tdb.connector.load_batch(entity=customer_entity(), rows=rows, source_keys=["a"],
                                 run_id="r", batch_id="b", namespace="p", result_meta={})


# ------------------------------------------------------------------ PostgreSQL specifics

def test_pg_concurrent_attempts_of_one_batch_write_it_once(tpg):
    tpg.script(target_ddl("postgresql"))
    tpg.connector.ensure_ledger()
    results = []

    def attempt() -> None:
        conn = connect("postgresql", tpg.params)
        try:
            results.append(load(conn, customer_rows(2000)))
        finally:
            conn.close()

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.already_done for r in results) == [False, True, True]
    assert tpg.execute("SELECT count(*) FROM customer") == [(2000,)]


def test_pg_lost_connection_raises_transient_error(tpg):
    tpg.script("CREATE TABLE src (id integer PRIMARY KEY)")
    tpg.connector.count("src")
    tpg.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    with pytest.raises(TransientError):
        tpg.connector.count("src")
    assert tpg.connector.count("src") == 0  # reconnects on the next call


def test_pg_introspect_reports_types_lengths_and_keys(tpg):
    tpg.script(target_ddl("postgresql"))
    info = tpg.connector.introspect().table("customer")
    ext, name, born = info.column("ext"), info.column("name"), info.column("born")
    assert info.primary_key == ("id",)
    assert ("ext",) in info.unique
    assert (ext.data_type, ext.max_length, ext.nullable) == ("character varying(20)", 20, False)
    # casts use the full declared type (a bare ``character`` would be char(1))
    assert (name.cast_type, born.cast_type) == ("character varying(10)", "date")
    assert (name.base_type, name.family_type) == ("character varying", "character varying")
    assert info.column("id").has_default is True


def test_validate_rows_catches_numeric_overflow(pg_params):
    import pandas as pd
    import psycopg2

    from runs.engine.connectors import connect

    raw = psycopg2.connect(**pg_params)
    with raw, raw.cursor() as cur:
        cur.execute("CREATE TABLE money (id serial PRIMARY KEY, amount numeric(6,2))")
    raw.close()
    conn = connect("postgresql", pg_params)
    frame = pd.DataFrame({"amount": ["9999.99", "10000.00", "-9999.995", "12.5", None]},
                         dtype=object)
    errors = conn.validate_rows("money", frame)
    assert sorted(errors) == [1, 2]
    assert errors[1][0].category == "type_cast" and "numeric(6,2)" in errors[1][0].message
    conn.close()


def test_text_array_literal_round_trips_any_text(pg_params):
    import psycopg2

    from runs.engine.connectors.postgres import text_array

    values = ["", "NULL", "a,b", '{"x"}', 'say "hi"', "back\\slash\\", " pad ", "ä€😀", "x\ny", 7]
    raw = psycopg2.connect(**pg_params)
    try:
        with raw.cursor() as cur:
            cur.execute("SELECT %s::text[]", (text_array(values),))
            assert cur.fetchone()[0] == [str(v) for v in values]
            cur.execute("SELECT cardinality(%s::text[])", (text_array([]),))
            assert cur.fetchone()[0] == 0
    finally:
        raw.close()


def test_pg_ledger_keeps_inserts_as_arrays_and_still_reads_ledgers_of_the_row_format(tpg):
    """Inserted rows live as two arrays in the batch record (no ledger row each); a ledger
    written by the earlier format (a row per inserted row, no arrays, no view) is upgraded in
    place, and its batches reconcile and roll back like the new ones."""
    tpg.script(target_ddl("postgresql"))
    before = tpg.connector.table_checksum("customer", ["id"])
    load(tpg.connector, customer_rows(3), run="r0", batch="b1")
    assert tpg.execute("SELECT count(*) FROM mp_ledger.row") == [(0,)]
    assert tpg.execute(
        "SELECT cardinality(inserted_keys), cardinality(inserted_hashes) FROM mp_ledger.batch"
    ) == [(3, 3)]
    # turn b1 into the earlier format and take the ledger back to before the arrays
    tpg.script(
        "INSERT INTO mp_ledger.row SELECT b.run_id, b.batch_id, b.entity, b.target_table, u.k, "
        "'insert', NULL, u.h FROM mp_ledger.batch b, unnest(b.inserted_keys, b.inserted_hashes) "
        "AS u(k, h); DROP VIEW mp_ledger.written; ALTER TABLE mp_ledger.batch "
        "DROP COLUMN inserted_keys, DROP COLUMN inserted_hashes"
    )
    load(tpg.connector, customer_rows(2, start=3), run="r0", batch="b2")  # upgrades the ledger
    ledger_hashes = tpg.execute("SELECT row_hash FROM mp_ledger.written WHERE run_id = 'r0'")
    current = tpg.connector.row_hashes("customer", "ext", [f"E{i:05d}" for i in range(5)],
                                       columns=["ext", "name", "age", WEIRD])
    assert sorted(h for (h,) in ledger_hashes) == sorted(current.values())
    load(tpg.connector, customer_rows(5, name="new"), run="r1", batch="b1")  # overwrites all 5
    written = tpg.execute(
        "SELECT run_id, batch_id, action, count(*) FROM mp_ledger.written GROUP BY 1, 2, 3 "
        "ORDER BY 1, 2, 3"
    )
    assert written == [("r0", "b1", "insert", 3), ("r0", "b2", "insert", 2),
                       ("r1", "b1", "update", 5)]
    undone = [tpg.connector.rollback_batch(r, b) for r, b in (("r1", "b1"), ("r0", "b2"),
                                                             ("r0", "b1"))]
    assert [(u.deleted, u.restored, u.ledger_rows_deleted) for u in undone] == [
        (0, 5, 5), (2, 0, 2), (3, 0, 3)]
    assert tpg.connector.table_checksum("customer", ["id"]) == before
    assert tpg.execute("SELECT count(*) FROM mp_ledger.written") == [(0,)]


def test_extract_of_one_column_keeps_its_null_rows(tdb):
    """COPY writes a one-column NULL as an empty line; the CSV reader must not skip it (it
    did: pre-validation's completeness counted 65.93% where 29.67% of rows were filled)."""
    tdb.script("CREATE TABLE src (id integer PRIMARY KEY, v text)")
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for row in [(1, "a"), (2, None), (3, ""), (4, None), (5, "b"), (6, None)]:
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph})", row)
    for extract in (tdb.connector.extract, getattr(tdb.connector, "extract_text", None)):
        if extract is None:
            continue
        frame = extract("src", ["v"], ["id"], KeyRange())
        values = [None if pd.isna(v) else v for v in frame["v"]]
        assert values == ["a", None, "", None, "b", None]


def test_pg_ledger_batch_arrays_use_lz4_and_packed_failures_skip_compression(tpg):
    tpg.connector.ensure_ledger()
    got = dict(tpg.execute(
        "SELECT attname, attcompression::text || attstorage::text FROM pg_attribute "
        "WHERE attrelid = 'mp_ledger.batch'::regclass AND attname IN "
        "('keymap_source', 'keymap_target', 'inserted_keys', 'inserted_hashes', 'failures')"))
    # Debian's PostgreSQL is built with lz4 ('l'); storage 'x' = extended, 'e' = external
    assert got == {"keymap_source": "lx", "keymap_target": "lx", "inserted_keys": "lx",
                   "inserted_hashes": "lx", "failures": "e"}


# ------------------------------------------------------------------ intended row hashes

FAITHFUL = {  # type -> values the column holds as meant: no coercion, ledger == target
    "text": ["", " a ", "é 😀", "x\ny", None],
    "varchar(5)": ["abc", "abc  ", "", None],
    "uuid": ["6F9619FF-8B86-D011-B42D-00C04FC964FF", "00000000-0000-0000-0000-000000000000"],
    "integer": ["0", "-12", "2147483647", None, "007", "+5"],
    "bigint": ["-9223372036854775808", "42"],
    "date": ["2024-02-29", "0099-01-01", None],
    "timestamp": ["2024-02-29", "2024-02-29T23:59:59", "1999-12-31 00:00:00", "2024-02-29 10:11"],
    "timestamp(3)": ["2024-02-29T01:02:03", "2024-02-29T01:02:03.123"],
    "timestamptz": ["2024-02-29 10:11:12", "2024-02-29T10:11:12+02:00", "2024-02-29T08:00Z"],
    "numeric(6,2)": ["1.5", "12", "-3.25", "0.10", "0", "12.", "-0.00", "007.5", "1.550", None],
    "numeric(5)": ["12", "12.", "-4", "0"],
    "numeric": ["1.50", "-7", "0.000", "123456789.123456789", "1e3"],
    "char(3)": ["a", "ab ", "", " x", "abc", None],
    "boolean": ["t", "TRUE", "no", "1", None],
    "json": ['{"b": 1, "a": [1, 2]}', "[]", "null", None],
    "jsonb": ['{"b": 1,  "a": "x"}'],
    "double precision": ["0.1", "19.99", "1e20", "-0"],
}


def _one_column_load(tpg, pg_type, values, run="r"):
    tpg.script(f"DROP TABLE IF EXISTS rb; CREATE TABLE rb (i serial PRIMARY KEY, "
               f"ext text UNIQUE NOT NULL, v {pg_type})")
    ext = [f"E{i}" for i in range(len(values))]
    rows = text_frame(["ext", "v"], {"ext": ext, "v": values})
    entity = EntitySpec(name="rb", source_table="src", target_table="rb", source_key=("ext",),
                        target_key="i", external_id="ext", load_mode="upsert",
                        fields=(FieldSpec(target="ext", sources=("ext",)),
                                FieldSpec(target="v", sources=("v",))))
    tpg.connector.introspect()
    return tpg.connector.load_batch(entity=entity, rows=rows, source_keys=ext, run_id=run,
                                    batch_id="b1", namespace="plan", result_meta={})


@pytest.mark.parametrize("pg_type", sorted(FAITHFUL))
def test_pg_ledger_hashes_the_intended_values_and_a_faithful_load_matches_them(tpg, pg_type):
    """The ledger's hash is that of the values as meant (canonical text per type); a value
    the column holds faithfully (other spelling, same meaning) reads back to the same hash."""
    result = _one_column_load(tpg, pg_type, FAITHFUL[pg_type])
    assert (result.inserted, result.coerced) == (len(FAITHFUL[pg_type]), 0)
    ledger = dict(tpg.execute("SELECT target_key, row_hash FROM mp_ledger.written"))
    assert tpg.connector.row_hashes("rb", "i", list(ledger), columns=["ext", "v"]) == ledger
    assert tpg.connector.read_back_rows == len(FAITHFUL[pg_type])


def test_arrow_row_hashes_equal_row_hash_for_string_and_large_string_columns():
    rows = [("a", None, "é"), ("", "x\x1fy", None), (None, None, None)]
    cols = list(zip(*rows, strict=True))
    arrays = [pa.array(cols[0], pa.string()), pa.array(cols[1], pa.large_string()),
              pa.array(cols[2], pa.string())]
    assert arrow_row_hashes(arrays) == [row_hash(r) for r in rows]


def _typed_target(tpg):
    tpg.script("CREATE TABLE typed (id bigserial PRIMARY KEY, ext varchar(20) UNIQUE NOT NULL, "
               "seen timestamp, tag uuid, n integer)")


def _typed_load(conn, n=100, *, run="r", start=0):
    ext = [f"T{i:04d}" for i in range(start, start + n)]
    rows = text_frame(["ext", "seen", "tag", "n"], {
        "ext": ext,
        "seen": [None if i % 9 == 0 else f"2024-01-{1 + i % 28:02d}" + ("T08:30:00" if i % 2
                                                                      else "") for i in range(n)],
        "tag": [f"{i:08X}-AAAA-4BBB-8CCC-{i:012d}" for i in range(n)],
        "n": [str(i - 50) for i in range(n)],
    })
    fields = tuple(FieldSpec(target=c, sources=(c,)) for c in ("ext", "seen", "tag", "n"))
    entity = EntitySpec(name="typed", source_table="src", target_table="typed",
                        source_key=("ext",), target_key="id", external_id="ext",
                        load_mode="upsert", fields=fields)
    return conn.load_batch(entity=entity, rows=rows, source_keys=ext, run_id=run,
                           batch_id="b1", namespace="plan", result_meta={})


def _ledger_matches_target(tpg, run="r"):
    ledger = dict(tpg.execute(
        "SELECT t.ext, w.row_hash FROM mp_ledger.written w JOIN typed t "
        "ON t.id = w.target_key::bigint WHERE w.run_id = %s", (run,)))
    server = tpg.connector.row_hashes("typed", "ext", sorted(ledger),
                                      columns=["ext", "seen", "tag", "n"])
    return len(ledger), ledger == server


def test_pg_ledger_of_a_faithful_load_matches_the_target(tpg):
    _typed_target(tpg)
    _typed_load(tpg.connector)
    assert _ledger_matches_target(tpg) == (100, True)


def test_pg_a_trigger_that_rewrites_rows_makes_them_coerced_and_undone(tpg):
    """A BEFORE trigger adds 1 to n: every row the target changed is taken out again and
    reported (key, column, intended, stored); none stays loaded, none is in the ledger."""
    _typed_target(tpg)
    tpg.execute("CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN IF NEW.n >= 0 THEN NEW.n := NEW.n + 1; END IF; RETURN NEW; END$$")
    tpg.execute("CREATE TRIGGER bump BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION bump()")
    result = _typed_load(tpg.connector)
    assert (result.inserted, result.coerced) == (50, 50)
    assert tpg.execute("SELECT count(*), min(n) FROM typed") == [(50, -50)]
    failures = result.result_meta["failures"]
    assert len(failures) == 50 and failures[0]["source_key"] == "T0050"
    assert failures[0]["errors"] == [{
        "field": "n", "rule": "read_back", "value": "0", "category": "coerced_by_target",
        "message": "the target stored '1' in n, not the intended '0'"}]
    assert _ledger_matches_target(tpg) == (50, True)


def test_pg_a_non_iso_datestyle_changes_nothing_in_the_proof(tpg):
    """psycopg2 sets ISO at connect; a session changed later ('2024-01-02 08:30:00' reads back
    '02/01/2024 08:30:00') still compares equal: canonical text does not use DateStyle."""
    _typed_target(tpg)
    conn = tpg.connector._connection()
    with conn, conn.cursor() as cur:
        cur.execute("SET DateStyle = 'SQL, DMY'")
    result = _typed_load(tpg.connector)
    assert result.coerced == 0
    with conn, conn.cursor() as cur:
        cur.execute("SELECT seen::text FROM typed WHERE ext = 'T0001'")
        assert cur.fetchone() == ("02/01/2024 08:30:00",)
    ledger = dict(tpg.execute("SELECT target_key, row_hash FROM mp_ledger.written"))
    assert tpg.connector.row_hashes("typed", "id", list(ledger),
                                    columns=["ext", "seen", "tag", "n"]) == ledger


def test_pg_upsert_of_new_ids_falls_back_to_on_conflict_when_one_appears_meanwhile(tpg):
    """The plain INSERT of an all-new batch meets a row another session inserted (uncommitted
    when the batch looked): it waits, fails on the unique key, and the batch upserts."""
    _typed_target(tpg)
    other = psycopg2.connect(**{k: v for k, v in tpg.params.items() if v})
    cur = other.cursor()
    cur.execute("INSERT INTO typed (ext, n) VALUES ('T0003', 999)")
    result = {}
    loader = threading.Thread(target=lambda: result.update(r=_typed_load(tpg.connector)))
    loader.start()
    for _ in range(200):  # until the loader waits on the other session's row
        waiting = tpg.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                              "'Lock' AND query LIKE 'INSERT INTO%%typed%%'")
        if waiting[0][0]:
            break
        time.sleep(0.05)
    other.commit()
    other.close()
    loader.join(30)
    assert (result["r"].inserted, result["r"].updated) == (99, 1)
    assert tpg.execute("SELECT n FROM typed WHERE ext = 'T0003'") == [(-47,)]
    before = tpg.execute("SELECT before_image->>'n' FROM mp_ledger.written "
                         "WHERE run_id = 'r' AND action = 'update'")
    assert before == [("999",)]
    assert _ledger_matches_target(tpg) == (100, True)
