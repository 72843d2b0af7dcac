"""SQLite-only connector behaviour (the shared contract runs in test_connector_extract.py and
test_connector_load.py)."""

from __future__ import annotations

import sqlite3

import pytest

from runs.engine.connectors import KeyRange, connect
from runs.engine.connectors.base import text_frame
from runs.engine.connectors.sqlite import q
from runs.engine.errors import SchemaError, TransientError
from runs.engine.rollback import rollback_run
from runs.engine.snapshot import EntitySpec, FieldSpec


def raw(params) -> sqlite3.Connection:
    return sqlite3.connect(params["path"], isolation_level=None)


def doc_entity() -> EntitySpec:
    return EntitySpec(
        name="doc",
        source_table="src",
        target_table="doc",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(FieldSpec("ext", ("ext",)), FieldSpec("title", ("title",))),
    )


def test_sqlite_quote_doubles_embedded_backticks():
    assert q("weird `name`") == "`weird ``name```"
    assert q('dq "x"') == '`dq "x"`'


def test_sqlite_unknown_quoted_identifier_is_an_error_never_a_literal(sqlite_params):
    db = raw(sqlite_params)
    db.execute("CREATE TABLE src (id INTEGER PRIMARY KEY, notes TEXT)")
    db.execute("INSERT INTO src VALUES (1, 'n')")
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        db.execute(f"SELECT {q('gone')} FROM src").fetchall()


def test_sqlite_extract_checks_the_live_table_not_the_cached_schema(sqlite_params):
    db = raw(sqlite_params)
    db.execute("CREATE TABLE src (id INTEGER PRIMARY KEY, notes TEXT)")
    db.execute("INSERT INTO src VALUES (1, 'n')")
    conn = connect("sqlite", sqlite_params)
    assert conn.extract("src", ["id", "notes"], ["id"], KeyRange())["notes"].tolist() == ["n"]
    db.execute("ALTER TABLE src RENAME COLUMN notes TO notes_old")  # the cache still has "notes"
    with pytest.raises(SchemaError, match="column 'notes' does not exist in table 'src'"):
        conn.extract("src", ["id", "notes"], ["id"], KeyRange())


def test_sqlite_key_ranges_keep_native_key_values(sqlite_params):
    db = raw(sqlite_params)
    db.execute("CREATE TABLE src (id INTEGER PRIMARY KEY)")
    db.executemany("INSERT INTO src VALUES (?)", [(i,) for i in range(1, 26)])
    ranges = connect("sqlite", sqlite_params).key_ranges("src", ["id"], 10)
    assert ranges == [KeyRange(None, (10,)), KeyRange((10,), (20,)), KeyRange((20,), None)]


def test_sqlite_introspect_reports_rowid_alias_and_lengths(sqlite_params):
    raw(sqlite_params).execute(
        "CREATE TABLE doc (id INTEGER PRIMARY KEY, ext VARCHAR(12) NOT NULL UNIQUE, title TEXT)"
    )
    info = connect("sqlite", sqlite_params).introspect().table("doc")
    assert info.primary_key == ("id",)
    assert ("ext",) in info.unique
    assert (info.column("id").has_default, info.column("ext").max_length) == (True, 12)
    assert info.column("ext").nullable is False


def test_sqlite_write_lock_held_elsewhere_raises_transient_error(sqlite_params):
    raw(sqlite_params).execute(
        "CREATE TABLE doc (id INTEGER PRIMARY KEY, ext TEXT UNIQUE, title TEXT)"
    )
    conn = connect("sqlite", {**sqlite_params, "busy_timeout_ms": 100})
    conn.ensure_ledger()
    blocker = raw(sqlite_params)
    blocker.execute("BEGIN IMMEDIATE")
    frame = text_frame(["ext", "title"], {"ext": ["a"], "title": ["t"]})
    try:
        with pytest.raises(TransientError):
            conn.load_batch(
                entity=doc_entity(),
                rows=frame,
                source_keys=["a"],
                run_id="r",
                batch_id="b",
                namespace="p",
                result_meta={},
            )
    finally:
        blocker.execute("ROLLBACK")
    assert conn.ledger_batches("r") == []


def test_sqlite_rollback_restores_blob_and_typed_values_exactly(sqlite_params):
    db = raw(sqlite_params)
    db.execute(
        "CREATE TABLE doc (id INTEGER PRIMARY KEY, ext TEXT UNIQUE, title TEXT, body BLOB, n)"
    )
    db.execute("INSERT INTO doc (ext, title, body, n) VALUES ('a', 'old', X'00FF10', 7)")
    db.execute("INSERT INTO doc (ext, title, body, n) VALUES ('b', NULL, NULL, '7')")
    conn = connect("sqlite", sqlite_params)
    before = conn.table_checksum("doc", ["id"])
    frame = text_frame(["ext", "title"], {"ext": ["a", "b", "c"], "title": ["x", "y", "z"]})
    conn.load_batch(
        entity=doc_entity(),
        rows=frame,
        source_keys=["a", "b", "c"],
        run_id="r",
        batch_id="b",
        namespace="p",
        result_meta={},
    )
    rollback_run(target=conn, run_id="r")
    assert conn.table_checksum("doc", ["id"]) == before
    assert db.execute("SELECT typeof(n), body FROM doc ORDER BY id").fetchall() == [
        ("integer", b"\x00\xff\x10"),
        ("text", None),
    ]


def test_key_ranges_of_a_table_smaller_than_one_batch_cover_it(tmp_path):
    from runs.engine.connectors import KeyRange, connect

    params = {"path": str(tmp_path / "small.sqlite3"), "allowed_root": str(tmp_path)}
    conn = connect("sqlite", params)
    with conn._tx(write=True) as raw:
        raw.execute("CREATE TABLE s (k INTEGER PRIMARY KEY, v TEXT)")
        raw.executemany("INSERT INTO s VALUES (?, ?)", [(i, str(i)) for i in range(5)])
    assert conn.key_ranges("s", ["k"], 100) == [KeyRange(None, None)]
    assert len(conn.extract("s", ["k", "v"], ["k"], KeyRange(None, None))) == 5
