"""Proof against intent, per target type, on PostgreSQL and SQLite (issue 14).

For char(n), varchar(n), numeric(p,s), timestamptz, boolean, uuid and json targets: a faithful
value loads and reconciles clean; a value the target changes (a trigger here) is caught by the
batch's read-back as ``coerced_by_target`` and is not left in the target; a value that cannot
fit the declared type is refused before the INSERT; and a change made to the target after the
load is a named mismatch of the reconciliation, never a clean one.
"""

from __future__ import annotations

import pytest

from runs.engine.batch import execute_batch
from runs.engine.connectors import KeyRange
from runs.engine.connectors.base import COERCED
from runs.engine.reconcile import reconcile_in_memory, reconcile_pg
from runs.engine.snapshot import EntitySpec, FieldSpec, PlanSnapshot

# name -> (PostgreSQL type, SQLite type, faithful E0, faithful E1 (the trigger rewrites it),
#          what the trigger stores instead (SQL literal), a value refused before the INSERT
#          with its category, or None, E0 as the target reads it back on PostgreSQL)
CASES = {
    "char3": ("char(3)", "char(3)", "USD", "EUR", "'XYZ'", ("EURO", "too_long"), "USD"),
    "varchar5": (
        "varchar(5)",
        "varchar(5)",
        "ab c",
        "abcde",
        "'abcd'",
        ("abcdef", "too_long"),
        "ab c",
    ),
    "numeric": (
        "numeric(8,2)",
        "numeric(8,2)",
        "12.5",
        "-3.25",
        "3.24",
        ("1.235", "type_cast"),
        "12.50",
    ),
    "timestamptz": (
        "timestamptz",
        "timestamptz",
        "2024-02-29T10:11:12+02:00",
        "2024-03-01 00:00:00Z",
        "'2024-03-01 00:00:01+00'",
        ("yesterday-ish", "type_cast"),
        None,
    ),
    "boolean": ("boolean", "boolean", "no", "FALSE", "true", ("maybe", "type_cast"), "false"),
    "uuid": (
        "uuid",
        "uuid",
        "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        "00000000-0000-0000-0000-000000000000",
        "'00000000-0000-0000-0000-000000000001'",
        ("not-a-uuid", "type_cast"),
        "6f9619ff-8b86-d011-b42d-00c04fc964ff",
    ),
    "json": (
        "json",
        "json",
        '{"b": 1, "a": [1, 2]}',
        '{"x": null}',
        "'{\"x\": 0}'",
        None,
        '{"b": 1, "a": [1, 2]}',
    ),
}


def _entity() -> EntitySpec:
    return EntitySpec(
        name="t",
        source_table="src",
        target_table="t",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(FieldSpec("ext", ("ext",)), FieldSpec("v", ("v",))),
    )


def _setup(tdb, case: str) -> list[tuple[str, str]]:
    pg_type, lite_type, e0, e1, altered, refused, _ = CASES[case]
    pg = tdb.kind == "postgresql"
    key = "id serial PRIMARY KEY" if pg else "id INTEGER PRIMARY KEY"
    tdb.script(
        "CREATE TABLE src (ext text PRIMARY KEY, v text);"
        f"CREATE TABLE t ({key}, ext varchar(20) NOT NULL UNIQUE, v {pg_type if pg else lite_type})"
    )
    rows = [("E0", e0), ("E1", e1)] + ([("E2", refused[0])] if refused else [])
    ph = "%s" if pg else "?"
    for row in rows:
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph})", row)
    if pg:
        tdb.execute(
            "CREATE FUNCTION rewrite() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$BEGIN IF NEW.ext = 'E1' THEN NEW.v := {altered}; END IF; RETURN NEW; END$$"
        )
        tdb.execute(
            "CREATE TRIGGER rewrite BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION rewrite()"
        )
    else:
        tdb.execute(
            "CREATE TRIGGER rewrite AFTER INSERT ON t WHEN NEW.ext = 'E1' BEGIN "
            f"UPDATE t SET v = {altered} WHERE id = NEW.id; END"
        )
    tdb.connector.introspect()
    return rows


def _batch(tdb, run="r1"):
    snapshot = PlanSnapshot(plan="intent", version=1, entities=(_entity(),))
    return execute_batch(
        snapshot=snapshot,
        entity=_entity(),
        key_range=KeyRange(),
        source=tdb.connector,
        target=tdb.connector,
        run_id=run,
        batch_id="b1",
    )


def _diff(tdb, run="r1"):
    info = tdb.connector.introspect().table("t")
    common = {
        "key": info.column("id"),
        "columns": [info.column("ext"), info.column("v")],
        "run_id": run,
        "entity": "t",
    }
    if tdb.kind == "postgresql":
        return reconcile_pg(tdb.connector._tx, table=tdb.connector.table_ident(info), **common)
    common["columns"] = ["ext", "v"]
    return reconcile_in_memory(tdb.connector, table="t", **common)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_faithful_value_loads_a_changed_one_is_coerced_and_a_misfit_is_refused(tdb, case):
    rows = _setup(tdb, case)
    outcome = _batch(tdb)
    refused = CASES[case][5]
    assert (outcome.extracted, outcome.loaded, outcome.inserted) == (len(rows), 1, 1)
    assert outcome.failed == len(rows) - 1
    by_key = {f.source_key: f for f in outcome.failures}
    coerced = by_key["E1"]
    assert (coerced.stage, coerced.category, coerced.field) == ("load", COERCED, "v")
    assert coerced.source_row == {"ext": "E1", "v": CASES[case][3]}
    assert "the target stored" in coerced.message
    if refused:  # caught by the declared type before the INSERT, not by the read-back
        assert (by_key["E2"].category, by_key["E2"].rule) == (refused[1], "load")
    # only the faithful row is in the target, and the ledger's intent matches it
    assert [r[0] for r in tdb.execute("SELECT ext FROM t")] == ["E0"]
    expected = CASES[case][6]
    if tdb.kind == "postgresql" and expected is not None:
        assert tdb.execute("SELECT v::text FROM t") == [(expected,)]
    diff = _diff(tdb)
    assert diff.clean and diff.expected_rows == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_change_made_to_the_target_after_the_load_is_a_mismatch(tdb, case):
    _setup(tdb, case)
    _batch(tdb)
    _, _, _, _, altered, _, _ = CASES[case]
    tdb.execute(f"UPDATE t SET v = {altered} WHERE ext = 'E0'")
    diff = _diff(tdb)
    assert not diff.clean
    assert (diff.changed, diff.missing) == ([str(tdb.execute("SELECT id FROM t")[0][0])], [])


def test_pg_char3_keeps_every_character_through_a_batch(tpg):
    """The demo's orders.currency: 'USD' into char(3) stays 'USD' (was cut to 'U')."""
    tpg.script(
        "CREATE TABLE src (ext text PRIMARY KEY, v text);"
        "CREATE TABLE t (id serial PRIMARY KEY, ext varchar(20) NOT NULL UNIQUE, v char(3))"
    )
    for i, cur in enumerate(["USD", "EUR", "GB"]):
        tpg.execute("INSERT INTO src VALUES (%s, %s)", (f"E{i}", cur))
    outcome = _batch(tpg)
    assert (outcome.loaded, outcome.failed) == (3, 0)
    assert tpg.execute("SELECT v FROM t ORDER BY ext") == [("USD",), ("EUR",), ("GB ",)]
    assert _diff(tpg).clean


def test_pg_an_offset_a_timestamp_column_drops_is_a_coercion(tpg):
    """timestamp without time zone ignores a written offset: the instant meant is not the
    one stored (unless the offset is the session's), so the row is coerced_by_target."""
    tpg.script(
        "CREATE TABLE src (ext text PRIMARY KEY, v text);"
        "CREATE TABLE t (id serial PRIMARY KEY, ext varchar(20) NOT NULL UNIQUE, v timestamp)"
    )
    tpg.execute(
        "INSERT INTO src VALUES ('E0', '2024-01-01 10:00:00'), "
        "('E1', '2024-01-01T10:00:00+05:00'), ('E2', '2024-01-01T10:00:00Z')"
    )
    tpg.connector.introspect()
    conn = tpg.connector._connection()
    with conn, conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
    outcome = _batch(tpg)
    assert (outcome.loaded, [f.source_key for f in outcome.failures]) == (2, ["E1"])
    assert outcome.failures[0].errors[0].value == "2024-01-01T05:00:00.000000"


def test_pg_a_typmod_that_rounds_is_caught_by_the_read_back(tpg):
    """timestamptz(0) rounds fractions of a second: no pre-check knows, the read-back does."""
    tpg.script(
        "CREATE TABLE src (ext text PRIMARY KEY, v text);"
        "CREATE TABLE t (id serial PRIMARY KEY, ext varchar(20) NOT NULL UNIQUE, "
        "v timestamptz(0))"
    )
    tpg.execute(
        "INSERT INTO src VALUES ('E0', '2024-01-01 10:00:00+00'), "
        "('E1', '2024-01-01 10:00:00.6+00')"
    )
    outcome = _batch(tpg)
    assert (outcome.loaded, [f.source_key for f in outcome.failures]) == (1, ["E1"])
    assert outcome.failures[0].category == COERCED


@pytest.fixture
def tlite(sqlite_params):
    """SQLite only."""
    from tests.engine.conftest import _open_db

    handle = _open_db("sqlite", sqlite_params)
    try:
        yield handle
    finally:
        handle.connector.close()
        handle._raw.close()


def test_sqlite_a_number_its_affinity_turns_into_a_float_is_a_coercion(tlite):
    """SQLite stores a 20-digit number in a NUMERIC column as a REAL (15 digits kept)."""
    tdb = tlite
    tdb.script(
        "CREATE TABLE src (ext text PRIMARY KEY, v text);"
        "CREATE TABLE t (id INTEGER PRIMARY KEY, ext varchar(20) NOT NULL UNIQUE, "
        "v numeric)"
    )
    tdb.execute("INSERT INTO src VALUES ('E0', '12.50'), ('E1', '12345678901234567890.5')")
    outcome = _batch(tdb)
    assert (outcome.loaded, [f.source_key for f in outcome.failures]) == (1, ["E1"])
    assert outcome.failures[0].category == COERCED
    assert _diff(tdb).clean


def test_an_update_the_target_changes_is_undone_also_when_skipping_unchanged_rows(tdb):
    """A delta batch (skip_unchanged) updates two rows; a trigger rewrites one of them: that
    update is undone (the row keeps its earlier value) and reported; the other stands."""
    pg = tdb.kind == "postgresql"
    key = "id serial PRIMARY KEY" if pg else "id INTEGER PRIMARY KEY"
    tdb.script(
        "CREATE TABLE src (ext text PRIMARY KEY, v text);"
        f"CREATE TABLE t ({key}, ext varchar(20) NOT NULL UNIQUE, v varchar(10))"
    )
    tdb.execute("INSERT INTO src VALUES ('E0', 'a'), ('E1', 'b'), ('E2', 'c')")
    assert _batch(tdb, "r1").loaded == 3
    tdb.execute("UPDATE src SET v = v || '2' WHERE ext IN ('E0', 'E1')")
    if pg:
        tdb.execute(
            "CREATE FUNCTION rewrite() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN IF NEW.ext = 'E1' THEN NEW.v := 'zz'; END IF; RETURN NEW; END$$"
        )
        tdb.execute(
            "CREATE TRIGGER rewrite BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION rewrite()"
        )
    else:
        tdb.execute(
            "CREATE TRIGGER rewrite AFTER UPDATE OF v ON t WHEN NEW.ext = 'E1' AND NEW.v <> 'zz' "
            "BEGIN UPDATE t SET v = 'zz' WHERE id = NEW.id; END"
        )
    snapshot = PlanSnapshot(plan="intent", version=1, entities=(_entity(),))
    outcome = execute_batch(
        snapshot=snapshot,
        entity=_entity(),
        key_range=KeyRange(),
        source=tdb.connector,
        target=tdb.connector,
        run_id="r2",
        batch_id="b1",
        skip_unchanged=True,
    )
    assert (outcome.loaded, outcome.updated, outcome.unchanged) == (2, 1, 1)
    assert [(f.source_key, f.category) for f in outcome.failures] == [("E1", COERCED)]
    rows = dict(tdb.execute("SELECT ext, v FROM t"))
    assert rows == {"E0": "a2", "E1": "b", "E2": "c"}


@pytest.mark.parametrize("column_type", ["json", "jsonb", "xml", "point"])
def test_skipping_unchanged_rows_works_on_types_without_equality(tdb, column_type):
    """Found by the oracle test: the second upsert of a table with a json column failed the
    batch on PostgreSQL ('operator does not exist: json = json'): skipping unchanged rows
    compared whole rows with IS DISTINCT FROM. Types without an equality (json, xml, point)
    are compared as their text."""
    pg = tdb.kind == "postgresql"
    key = "id serial PRIMARY KEY" if pg else "id INTEGER PRIMARY KEY"
    value = {"json": '{"a": 1}', "jsonb": '{"a": 1}', "xml": "<a>1</a>", "point": "(1,2)"}
    changed = {"json": "[2]", "jsonb": "[2]", "xml": "<b/>", "point": "(3,4)"}
    tdb.script(
        "CREATE TABLE src (ext text PRIMARY KEY, v text);"
        f"CREATE TABLE t ({key}, ext varchar(20) NOT NULL UNIQUE, v {column_type})"
    )
    ph = "%s" if pg else "?"
    for row in (("E0", value[column_type]), ("E1", value[column_type])):
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph})", row)
    assert _batch(tdb, "r1").loaded == 2
    tdb.execute(f"UPDATE src SET v = {ph} WHERE ext = 'E1'", (changed[column_type],))
    snapshot = PlanSnapshot(plan="intent", version=1, entities=(_entity(),))
    outcome = execute_batch(
        snapshot=snapshot,
        entity=_entity(),
        key_range=KeyRange(),
        source=tdb.connector,
        target=tdb.connector,
        run_id="r2",
        batch_id="b1",
        skip_unchanged=True,
    )
    assert (outcome.loaded, outcome.updated, outcome.unchanged, outcome.failed) == (2, 1, 1, 0)
