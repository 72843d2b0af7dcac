"""PostgreSQL: a batch written into a plain table that nothing but the INSERT touches is
compared as written (the INSERT's own casts against the intended values) instead of being read
back; a trigger, a rule, a cascading foreign key or a column altered since introspection
sends it back to the read-back, and what those change is still caught."""

from __future__ import annotations

from typing import Any

import pytest

from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.snapshot import EntitySpec, FieldSpec

COLUMNS = ("ext", "name", "seen", "n")


class CountingConnector(PostgresConnector):
    """The connector, counting its read-backs (the rows read back from the target)."""

    read_backs = 0

    def _read_back(self, *args: Any, **kwargs: Any) -> Any:
        self.read_backs += 1
        return super()._read_back(*args, **kwargs)


@pytest.fixture
def conn(tpg, pg_params):
    tpg.script(
        "CREATE TABLE typed (id bigserial PRIMARY KEY, ext varchar(20) UNIQUE NOT NULL, "
        "name varchar(5), seen timestamp, n integer)"
    )
    connector = CountingConnector(pg_params)
    yield connector
    connector.close()


def _load(connector, n=100, *, names=None, batch="b1"):
    ext = [f"T{i:04d}" for i in range(n)]
    rows = text_frame(
        list(COLUMNS),
        {
            "ext": ext,
            "name": names or [f"n{i % 100}" for i in range(n)],
            "seen": [f"2024-01-{1 + i % 28:02d}T08:30:00" for i in range(n)],
            "n": [str(i - 50) for i in range(n)],
        },
    )
    entity = EntitySpec(
        name="typed",
        source_table="src",
        target_table="typed",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=tuple(FieldSpec(target=c, sources=(c,)) for c in COLUMNS),
    )
    return connector.load_batch(
        entity=entity,
        rows=rows,
        source_keys=ext,
        run_id="r",
        batch_id=batch,
        namespace="plan",
        result_meta={},
    )


def _ledger_matches_target(tpg, connector):
    ledger = dict(tpg.execute("SELECT target_key, row_hash FROM mp_ledger.written"))
    return len(ledger), connector.row_hashes("typed", "id", list(ledger), columns=COLUMNS) == ledger


def test_pg_a_plain_table_is_compared_as_written_not_read_back(tpg, conn):
    result = _load(conn)
    assert (result.inserted, result.coerced, conn.read_backs) == (100, 0, 0)
    assert conn.read_back_rows == 100
    assert _ledger_matches_target(tpg, conn) == (100, True)
    # an upsert over the same rows (ON CONFLICT) is compared as written too
    result = _load(conn, batch="b2")
    assert (result.updated, result.coerced, conn.read_backs) == (100, 0, 0)


def test_pg_a_typmod_that_cuts_is_caught_when_compared_as_written(tpg, conn):
    names = ["short" if i % 2 else "toolong" for i in range(10)]
    result = _load(conn, 10, names=names)
    assert (result.inserted, result.coerced, conn.read_backs) == (5, 5, 0)
    errors = result.result_meta["failures"][0]["errors"]
    assert [(e["field"], e["rule"], e["value"]) for e in errors] == [
        ("name", "read_back", "toolong")
    ]
    assert tpg.execute("SELECT count(*) FROM typed WHERE name <> 'short'") == [(0,)]
    assert _ledger_matches_target(tpg, conn) == (5, True)


def test_pg_a_foreign_key_that_only_checks_keeps_the_comparison_as_written(tpg, conn):
    tpg.script(
        "CREATE TABLE parent (n integer PRIMARY KEY); "
        "INSERT INTO parent SELECT generate_series(-50, 49); "
        "ALTER TABLE typed ADD FOREIGN KEY (n) REFERENCES parent (n)"
    )
    result = _load(conn)
    assert (result.inserted, result.coerced, conn.read_backs) == (100, 0, 0)


def test_pg_an_after_trigger_that_changes_rows_is_read_back_and_caught(tpg, conn):
    tpg.execute(
        "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN UPDATE typed SET n = n + 1 WHERE id = NEW.id AND n >= 0; RETURN NULL; END$$"
    )
    tpg.execute("CREATE TRIGGER bump AFTER INSERT ON typed FOR EACH ROW EXECUTE FUNCTION bump()")
    result = _load(conn)
    assert conn.read_backs >= 1
    assert (result.inserted, result.coerced) == (50, 50)
    assert tpg.execute("SELECT count(*), max(n) FROM typed") == [(50, -1)]
    assert _ledger_matches_target(tpg, conn) == (50, True)


def test_pg_a_rule_that_changes_rows_is_read_back_and_caught(tpg, conn):
    tpg.execute(
        "CREATE RULE bump AS ON INSERT TO typed WHERE NEW.n >= 0 "
        "DO ALSO UPDATE typed SET n = n + 1 WHERE ext = NEW.ext"
    )
    result = _load(conn)
    assert conn.read_backs >= 1
    assert (result.inserted, result.coerced) == (50, 50)
    assert tpg.execute("SELECT count(*), max(n) FROM typed") == [(50, -1)]


def test_pg_a_cascading_foreign_key_is_read_back(tpg, conn):
    tpg.script(
        "ALTER TABLE typed ADD COLUMN parent varchar(20) REFERENCES typed (ext) ON UPDATE CASCADE"
    )
    result = _load(conn)
    assert (result.inserted, result.coerced, conn.read_backs) == (100, 0, 1)


def test_pg_a_column_altered_since_introspection_is_read_back_and_caught(tpg, conn):
    """The INSERT's casts name varchar(5); the column is varchar(2) by now, and the
    assignment cuts 'ab   ' to 'ab' without an error: only reading the row back shows it."""
    conn.introspect()
    tpg.execute("ALTER TABLE typed ALTER COLUMN name TYPE varchar(2)")
    result = _load(conn, 4, names=["ab", "ab   ", "a", "b"])
    assert conn.read_backs >= 1
    assert (result.inserted, result.coerced) == (3, 1)
    assert tpg.execute("SELECT ext FROM typed ORDER BY ext") == [("T0000",), ("T0002",), ("T0003",)]


def test_pg_a_timestamp_cast_once_still_catches_a_dropped_offset_and_a_uuid_in_any_spelling(
    tpg, pg_params
):
    """As written, a ``timestamp`` text is cast once and compared where it names an instant
    (the column drops the offset: caught), a ``uuid`` in the canonical shape is hashed as it
    is (other spellings read and printed): the ledger matches the target, no read-back."""
    tpg.script(
        "CREATE TABLE tu (id serial PRIMARY KEY, ext text UNIQUE NOT NULL, seen timestamp, u uuid)"
    )
    connector = CountingConnector(pg_params)
    with connector._tx() as cur:
        cur.execute("SET TimeZone = 'UTC'")
    seen = ["2024-01-01 10:00:00", "2024-01-01T10:00:00+05:00", "2024-01-01T10:00:00Z", None]
    uuids = [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12",
        "{a0eebc999c0b4ef8bb6d6bb9bd380a13}",
        None,
    ]
    ext = ["E0", "E1", "E2", "E3"]
    entity = EntitySpec(
        name="tu",
        source_table="src",
        target_table="tu",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=tuple(FieldSpec(target=c, sources=(c,)) for c in ("ext", "seen", "u")),
    )
    try:
        result = connector.load_batch(
            entity=entity,
            rows=text_frame(["ext", "seen", "u"], {"ext": ext, "seen": seen, "u": uuids}),
            source_keys=ext,
            run_id="r",
            batch_id="b1",
            namespace="plan",
            result_meta={},
        )
        assert (result.inserted, result.coerced, connector.read_backs) == (3, 1, 0)
        errors = result.result_meta["failures"][0]["errors"]
        assert [(e["field"], e["value"]) for e in errors] == [
            ("seen", "2024-01-01T05:00:00.000000")
        ]
        ledger = dict(tpg.execute("SELECT target_key, row_hash FROM mp_ledger.written"))
        stored = connector.row_hashes("tu", "id", list(ledger), columns=["ext", "seen", "u"])
        assert (len(ledger), stored == ledger) == (3, True)
        # a text in the canonical shape that is no uuid: the INSERT's cast refuses the batch
        with pytest.raises(Exception, match="uuid"):
            connector.load_batch(
                entity=entity,
                rows=text_frame(
                    ["ext", "seen", "u"],
                    {"ext": ["E9"], "seen": [None], "u": ["g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]},
                ),
                source_keys=["E9"],
                run_id="r",
                batch_id="b2",
                namespace="plan",
                result_meta={},
            )
    finally:
        connector.close()
