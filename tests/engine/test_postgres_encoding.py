"""PostgreSQL: the connector speaks UTF8 to a database of another encoding, so what COPY
sends (UTF-8 bytes) is stored as the characters meant, and the ledger's hash is theirs; a
character the database's encoding cannot hold is a load-stage failure of its row (named, with
its column), found before anything is written, while the batch's other rows load."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from runs.engine.batch import execute_batch
from runs.engine.connectors import KeyRange
from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.connectors.postgres.introspection import PG_CODECS
from runs.engine.hashing import row_hash
from runs.engine.snapshot import EntitySpec, FieldSpec, PlanSnapshot
from tests.engine.conftest import _admin_exec, _open_db, pg_admin_params


def _database(encoding: str):
    name = f"engine_{encoding.lower()}_{uuid.uuid4().hex[:12]}"
    _admin_exec(
        f"CREATE DATABASE \"{name}\" ENCODING '{encoding}' TEMPLATE template0 "
        "LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    try:
        yield {**pg_admin_params(), "dbname": name}
    finally:
        _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def latin1():
    yield from _database("LATIN1")


@pytest.fixture
def sql_ascii():
    yield from _database("SQL_ASCII")


def _entity(table: str, fields: tuple[str, ...]) -> EntitySpec:
    return EntitySpec(
        name=table,
        source_table="src",
        target_table=table,
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=tuple(FieldSpec(target=f, sources=(f,)) for f in fields),
    )


def _load(connector, entity, frame, batch="b"):
    """One batch of ``frame`` (its ``ext`` values are the source keys)."""
    return connector.load_batch(
        entity=entity,
        rows=frame,
        source_keys=list(frame["ext"]),
        run_id="r",
        batch_id=batch,
        namespace="plan",
        result_meta={},
    )


def test_pg_a_latin1_database_stores_the_characters_meant(latin1):
    raw = psycopg2.connect(**latin1)
    raw.autocommit = True
    cur = raw.cursor()
    cur.execute("CREATE TABLE t (id serial PRIMARY KEY, ext text UNIQUE NOT NULL, v text)")
    connector = PostgresConnector(latin1)
    entity = _entity("t", ("ext", "v"))

    def load(values, batch):
        ext = [f"{batch}{i}" for i in range(len(values))]
        return _load(connector, entity, text_frame(["ext", "v"], {"ext": ext, "v": values}), batch)

    try:
        values = ["é", "Größe", "naïve\tçà"]
        result = load(values, "a")
        assert (result.inserted, result.coerced) == (3, 0)
        raw.set_client_encoding("UTF8")
        cur.execute("SELECT v, length(v) FROM t ORDER BY ext")
        assert cur.fetchall() == [(v, len(v)) for v in values]
        cur.execute("SELECT row_hash FROM mp_ledger.written ORDER BY target_key::int")
        assert [r[0] for r in cur.fetchall()] == [
            row_hash([f"a{i}", v]) for i, v in enumerate(values)
        ]
        # what validation lets through is what the server takes: the loader itself does not
        # check, so a character LATIN1 cannot hold is still the server's error here
        with pytest.raises(Exception, match="LATIN1"):
            load(["😀"], "b")
    finally:
        connector.close()
        raw.close()


def test_pg_characters_a_latin1_database_cannot_hold_fail_their_rows_the_others_load(latin1):
    raw = psycopg2.connect(**latin1)
    raw.autocommit = True
    cur = raw.cursor()
    cur.execute(
        "CREATE TABLE accounts (id serial PRIMARY KEY, ext text UNIQUE NOT NULL, "
        "name varchar(20), note text, born date, meta jsonb)"
    )
    connector = PostgresConnector(latin1)
    try:
        info = connector.live_table("accounts")
        assert (info.encoding, info.codec) == ("LATIN1", "latin_1")  # from the live database
        cols = ["ext", "name", "note", "born", "meta"]
        data = {
            "ext": ["k0", "k1", "k2", "k3", "k4", "k5"],
            "name": ["Zoë", "5 €", "plain", None, "日本", "naïve"],
            "note": ["ça", "ok", "ok", "x😀y", "本", None],
            "born": ["2020-01-01", None, None, "2020-01-02", None, None],
            "meta": [None, None, '{"a": "é"}', None, None, '{"a": "€"}'],
        }
        frame = text_frame(cols, data)
        errors = connector.validate_rows("accounts", frame)
        assert sorted(errors) == [1, 3, 4, 5]
        by_row = {
            i: [(e.field, e.category, e.rule, e.message) for e in errs]
            for i, errs in errors.items()
        }
        no = "cannot be stored in the target database's encoding LATIN1"
        assert by_row[1] == [
            ("name", "unencodable", "load", f"character '€' (U+20AC) {no} (accounts.name)")
        ]
        assert by_row[3] == [
            ("note", "unencodable", "load", f"character '😀' (U+1F600) {no} (accounts.note)")
        ]
        assert by_row[4] == [
            (
                "name",
                "unencodable",
                "load",
                f"characters '日' (U+65E5), '本' (U+672C) {no} (accounts.name)",
            ),
            ("note", "unencodable", "load", f"character '本' (U+672C) {no} (accounts.note)"),
        ]
        assert by_row[5] == [
            ("meta", "unencodable", "load", f"character '€' (U+20AC) {no} (accounts.meta)")
        ]
        assert errors[1][0].value == "5 €"
        # the rest of the batch loads, stored as meant
        result = _load(connector, _entity("accounts", tuple(cols)), frame.drop(index=list(errors)))
        assert (result.inserted, result.coerced) == (2, 0)
        raw.set_client_encoding("UTF8")
        cur.execute("SELECT ext, name, note, meta->>'a' FROM accounts ORDER BY ext")
        assert cur.fetchall() == [("k0", "Zoë", "ça", None), ("k2", "plain", "ok", "é")]
    finally:
        connector.close()
        raw.close()


def test_pg_a_utf8_database_checks_no_encoding(pg_params):
    connector = PostgresConnector(pg_params)
    raw = psycopg2.connect(**pg_params)
    raw.autocommit = True
    name = f"enc_{uuid.uuid4().hex[:8]}"
    try:
        raw.cursor().execute(f'CREATE TABLE "{name}" (id serial PRIMARY KEY, v text)')
        info = connector.live_table(name)
        assert (info.encoding, info.codec) == ("UTF8", None)
        frame = text_frame(["v"], {"v": ["€ 日本 😀"]})
        assert connector.validate_rows(name, frame) == {}
    finally:
        raw.cursor().execute(f'DROP TABLE IF EXISTS "{name}"')
        connector.close()
        raw.close()


def test_pg_a_sql_ascii_database_checks_nothing_and_gives_back_the_bytes_it_took(sql_ascii):
    """SQL_ASCII converts nothing: the server stores the UTF-8 bytes the connector sends and
    gives them back alike to a UTF8 client, so no character is refused or changed."""
    raw = psycopg2.connect(**sql_ascii)
    raw.autocommit = True
    cur = raw.cursor()
    cur.execute(
        "CREATE TABLE accounts (id serial PRIMARY KEY, ext text UNIQUE NOT NULL, name text)"
    )
    connector = PostgresConnector(sql_ascii)
    try:
        info = connector.live_table("accounts")
        assert (info.encoding, info.codec) == ("SQL_ASCII", None)
        values = ["5 €", "日本", "x😀y"]
        frame = text_frame(["ext", "name"], {"ext": ["a", "b", "c"], "name": values})
        assert connector.validate_rows("accounts", frame) == {}
        result = _load(connector, _entity("accounts", ("ext", "name")), frame)
        assert (result.inserted, result.coerced) == (3, 0)
        raw.set_client_encoding("UTF8")
        cur.execute("SELECT name FROM accounts ORDER BY ext")
        assert [r[0] for r in cur.fetchall()] == values
    finally:
        connector.close()
        raw.close()


_TAKES = """
CREATE FUNCTION takes(enc name) RETURNS SETOF int LANGUAGE plpgsql AS $$
DECLARE cp int;
BEGIN
  FOR cp IN 1..65535 LOOP
    CONTINUE WHEN cp BETWEEN 55296 AND 57343;  -- surrogates are no characters
    BEGIN
      PERFORM convert_to(chr(cp), enc);
      RETURN NEXT cp;
    EXCEPTION WHEN untranslatable_character THEN NULL;
    END;
  END LOOP;
END $$
"""


def test_pg_each_codec_encodes_exactly_what_the_server_takes(pg_params):
    """Every character of the Basic Multilingual Plane: the server's conversion from UTF8
    (convert_to) takes it if and only if the mapped Python codec encodes it. Past U+FFFF no
    codec encodes any character (all of them tried) and the server takes none of a sample."""
    raw = psycopg2.connect(**pg_params)
    raw.autocommit = True
    cur = raw.cursor()
    bmp = [cp for cp in range(1, 0x10000) if not 0xD800 <= cp <= 0xDFFF]
    astral = "".join(map(chr, range(0x10000, 0x110000)))
    sample = (0x10000, 0x1D400, 0x1F600, 0x20000, 0x2A6D6, 0x2F800, 0x30000, 0x10FFFF)
    try:
        cur.execute(_TAKES)
        for encoding, codec in PG_CODECS.items():
            cur.execute("SELECT takes(%s)", (encoding,))
            server = {r[0] for r in cur.fetchall()}
            ours = {cp for cp in bmp if _encodes(chr(cp), codec)}
            assert (encoding, sorted(ours - server), sorted(server - ours)) == (encoding, [], [])
            assert astral.encode(codec, errors="ignore") == b""
            for cp in sample:
                with pytest.raises(psycopg2.errors.UntranslatableCharacter):
                    cur.execute("SELECT convert_to(chr(%s), %s)", (cp, encoding))
    finally:
        raw.close()


def _encodes(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def test_pg_a_batch_into_a_latin1_database_fails_only_the_rows_it_cannot_hold(
    latin1, sqlite_params
):
    """execute_batch, SQLite (UTF-8) source: a value or a source key (kept in the target's
    ledger, its key map) with a character LATIN1 cannot hold fails its row, named; the rest
    of the batch loads and the accounting balances."""
    source = _open_db("sqlite", sqlite_params)
    target = _open_db("postgresql", latin1)
    source.script(
        "CREATE TABLE legacy (code text PRIMARY KEY, num text, name text);"
        "INSERT INTO legacy VALUES ('a', '1', 'Zoë'), ('b', '2', '5 €'), ('€3', '3', 'ok'),"
        " ('d', '4', 'naïve'), ('e', '5', '日本')"
    )
    target.execute("CREATE TABLE accounts (id serial PRIMARY KEY, ext text UNIQUE, name text)")
    entity = EntitySpec(
        name="accounts",
        source_table="legacy",
        target_table="accounts",
        source_key=("code",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(FieldSpec("ext", ("num",)), FieldSpec("name", ("name",))),
    )
    try:
        outcome = execute_batch(
            snapshot=PlanSnapshot(plan="crm", version=1, entities=(entity,)),
            entity=entity,
            key_range=KeyRange(),
            source=source.connector,
            target=target.connector,
            run_id="run-1",
            batch_id="b1",
        )
        assert (outcome.extracted, outcome.loaded, outcome.failed) == (5, 2, 3)
        failed = {
            f.source_key: (f.stage, [(e.field, e.category) for e in f.errors])
            for f in outcome.failures
        }
        assert failed == {
            "b": ("load", [("name", "unencodable")]),
            "€3": ("load", [("code", "unencodable")]),
            "e": ("load", [("name", "unencodable")]),
        }
        key_error = next(f for f in outcome.failures if f.source_key == "€3").errors[0]
        assert key_error.message == (
            "character '€' (U+20AC) cannot be stored in the target database's encoding LATIN1 "
            "(source key code, kept in the target's ledger)"
        )
        target._raw.set_client_encoding("UTF8")
        assert target.execute("SELECT ext, name FROM accounts ORDER BY ext") == [
            ("1", "Zoë"),
            ("4", "naïve"),
        ]
    finally:
        for db in (source, target):
            db.connector.close()
            db._raw.close()


@pytest.fixture
def euc_jp():
    yield from _database("EUC_JP")


def test_pg_an_encoding_without_an_exact_codec_is_left_to_the_server(euc_jp):
    """EUC_JP: Python's codec takes other characters than the server's conversion, so none is
    checked; a character the database cannot hold is the server's error, for the batch."""
    raw = psycopg2.connect(**euc_jp)
    raw.autocommit = True
    raw.cursor().execute("CREATE TABLE t (id serial PRIMARY KEY, ext text UNIQUE, v text)")
    connector = PostgresConnector(euc_jp)
    try:
        info = connector.live_table("t")
        assert (info.encoding, info.codec) == ("EUC_JP", None)
        frame = text_frame(["ext", "v"], {"ext": ["a", "b"], "v": ["日本", "€"]})
        assert connector.validate_rows("t", frame) == {}
        with pytest.raises(psycopg2.errors.UntranslatableCharacter, match="EUC_JP"):
            _load(connector, _entity("t", ("ext", "v")), frame)
    finally:
        connector.close()
        raw.close()
