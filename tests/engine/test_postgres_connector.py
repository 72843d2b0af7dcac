"""PostgreSQL connector specifics: concurrent batch attempts, lost connections,
introspection, numeric overflow, the ledger's array format and compression.

The contract shared with SQLite runs in test_connector_extract.py and
test_connector_load.py; SQLite-only behaviour in test_sqlite_connector.py."""

from __future__ import annotations

import threading

import pandas as pd
import psycopg2
import pytest

from runs.engine.connectors import KeyRange, connect
from runs.engine.errors import TransientError
from tests.engine.customer_table import WEIRD, customer_rows, load, target_ddl

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
    tpg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
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

    from runs.engine.connectors import connect

    raw = psycopg2.connect(**pg_params)
    with raw, raw.cursor() as cur:
        cur.execute("CREATE TABLE money (id serial PRIMARY KEY, amount numeric(6,2))")
    raw.close()
    conn = connect("postgresql", pg_params)
    frame = pd.DataFrame(
        {"amount": ["9999.99", "10000.00", "-9999.995", "12.5", None]}, dtype=object
    )
    errors = conn.validate_rows("money", frame)
    assert sorted(errors) == [1, 2]
    assert errors[1][0].category == "type_cast" and "numeric(6,2)" in errors[1][0].message
    conn.close()


def test_text_array_literal_round_trips_any_text(pg_params):

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
        "AS u(k, h); DROP VIEW mp_ledger.covered; DROP VIEW mp_ledger.written; "
        "ALTER TABLE mp_ledger.batch DROP COLUMN inserted_keys, DROP COLUMN inserted_hashes"
    )
    load(tpg.connector, customer_rows(2, start=3), run="r0", batch="b2")  # upgrades the ledger
    ledger_hashes = tpg.execute("SELECT row_hash FROM mp_ledger.written WHERE run_id = 'r0'")
    current = tpg.connector.row_hashes(
        "customer", "ext", [f"E{i:05d}" for i in range(5)], columns=["ext", "name", "age", WEIRD]
    )
    assert sorted(h for (h,) in ledger_hashes) == sorted(current.values())
    load(tpg.connector, customer_rows(5, name="new"), run="r1", batch="b1")  # overwrites all 5
    written = tpg.execute(
        "SELECT run_id, batch_id, action, count(*) FROM mp_ledger.written GROUP BY 1, 2, 3 "
        "ORDER BY 1, 2, 3"
    )
    assert written == [
        ("r0", "b1", "insert", 3),
        ("r0", "b2", "insert", 2),
        ("r1", "b1", "update", 5),
    ]
    undone = [
        tpg.connector.rollback_batch(r, b) for r, b in (("r1", "b1"), ("r0", "b2"), ("r0", "b1"))
    ]
    assert [(u.deleted, u.restored, u.ledger_rows_deleted) for u in undone] == [
        (0, 5, 5),
        (2, 0, 2),
        (3, 0, 3),
    ]
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
    got = dict(
        tpg.execute(
            "SELECT attname, attcompression::text || attstorage::text FROM pg_attribute "
            "WHERE attrelid = 'mp_ledger.batch'::regclass AND attname IN "
            "('keymap_source', 'keymap_target', 'inserted_keys', 'inserted_hashes', 'failures', "
            "'state_keys', 'state_targets', 'target_xmins', 'kept_keys', 'row_hashes')"
        )
    )
    # Debian's PostgreSQL is built with lz4 ('l'); storage 'x' = extended, 'e' = external
    assert got == {
        "keymap_source": "lx",
        "keymap_target": "lx",
        "inserted_keys": "lx",
        "inserted_hashes": "lx",
        "failures": "e",
        # the row state's key and version arrays as the key map's; its hashes out of line
        "state_keys": "lx",
        "state_targets": "lx",
        "target_xmins": "lx",
        "kept_keys": "lx",
        "row_hashes": "e",
    }


def test_table_checksum_sums_a_64_bit_hash_per_row_and_still_answers_in_the_md5_form(tpg):
    """The checksum sums hashtextextended of each row's text (form "h1:"; not md5 cut to 64
    bits and cast through bit(64), which cost twice the server time): one changed cell, an
    added or a deleted row changes it, the table as it was gives it back. A digest taken in
    the earlier md5 form (a run recorded before) is answered in that form when passed as
    ``like``, so its rollback still compares like with like."""
    tpg.script(
        "DROP TABLE IF EXISTS ck; CREATE TABLE ck (id int PRIMARY KEY, a text, b numeric);"
        "INSERT INTO ck VALUES (1, 'x', 1.5), (2, NULL, NULL), (3, '', 0)"
    )
    conn = tpg.connector
    conn.introspect()
    before = conn.table_checksum("ck", ["id"])
    assert before.rows == 3 and before.digest.startswith("h1:")
    tpg.script("UPDATE ck SET a = 'y' WHERE id = 1")
    assert conn.table_checksum("ck", ["id"]) != before
    tpg.script("UPDATE ck SET a = 'x' WHERE id = 1")
    assert conn.table_checksum("ck", ["id"]) == before
    tpg.script("DELETE FROM ck WHERE id = 2")
    assert conn.table_checksum("ck", ["id"]).digest != before.digest
    tpg.script("INSERT INTO ck VALUES (2, NULL, NULL), (4, 'z', 4)")
    assert conn.table_checksum("ck", ["id"]).digest != before.digest
    tpg.script("DELETE FROM ck WHERE id = 4")
    assert conn.table_checksum("ck", ["id"]) == before
    ((total,),) = tpg.execute(
        "SELECT coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint), 0)::text "
        "FROM ck AS t"
    )
    old = f"{int(total) & (2**64 - 1):016x}"
    assert conn.table_checksum("ck", ["id"], like=old).digest == old
    assert conn.table_checksum("ck", ["id"], like=before.digest) == before


def test_the_ledgers_hash_arrays_are_stored_out_of_line_without_compression(tpg):
    """The row state's arrays of 32-digit hashes do not compress: pglz's attempt on each (a
    range carried whole copies two of 20,000; a batch record with row state writes them)
    cost ~5x the copy itself. They are stored EXTERNAL, also on a ledger made before
    (upgraded once); inserted_hashes keeps lz4 (a cheap attempt)."""
    hashes = ("source_hashes", "row_hashes", "kept_hashes")
    query = (
        "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = "
        "'mp_ledger.batch'::regclass AND attname = ANY(%s) ORDER BY attname"
    )
    tpg.connector.ensure_ledger()
    assert {s for _, s in tpg.execute(query, (list(hashes),))} == {"e"}
    tpg.script(
        "ALTER TABLE mp_ledger.batch ALTER COLUMN source_hashes SET STORAGE EXTENDED, "
        "ALTER COLUMN kept_hashes SET STORAGE EXTENDED"
    )
    tpg.connector.ensure_ledger()
    assert tpg.execute(query, (list(hashes),)) == [(h, "e") for h in sorted(hashes)]
