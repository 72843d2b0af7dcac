"""execute_batch on PostgreSQL and SQLite: accounting, idempotency, dry run, reference lookups."""

from __future__ import annotations

import pandas as pd
import pytest

from runs.engine.batch import BatchOutcome, execute_batch
from runs.engine.connectors import KeyRange
from runs.engine.drift import table_schema
from runs.engine.errors import SchemaError
from runs.engine.snapshot import EntitySpec, FieldSpec, FilterSpec, PlanSnapshot, RuleStepSpec

LEGACY = [  # id, name, age, status
    (1, "Ann", "30", "active"),
    (2, "Bob", "abc", "active"),  # load failure: age does not cast to integer
    (3, "Carl", "40", "deleted"),  # filtered
    (4, " Ann ", "31", "active"),  # duplicate of Ann (dedupe on name, after trim)
    (5, None, "1", "active"),  # transform failure: name required
    (6, "Maximilianus", "2", "active"),  # load failure: longer than varchar(10)
    *[(i, f"P{i}", str(i), "active") for i in range(7, 21)],
]


def setup_tables(tdb) -> None:
    key = "id serial PRIMARY KEY" if tdb.kind == "postgresql" else "id INTEGER PRIMARY KEY"
    tdb.script(
        "CREATE TABLE legacy (id integer PRIMARY KEY, name text, age text, status text);"
        f"CREATE TABLE customer ({key}, ext varchar(20) NOT NULL UNIQUE, "
        "name varchar(10) NOT NULL, age integer);"
        f"CREATE TABLE orders ({key}, ext varchar(20) NOT NULL UNIQUE, customer_id integer)"
    )
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for row in LEGACY:
        tdb.execute(f"INSERT INTO legacy VALUES ({ph}, {ph}, {ph}, {ph})", row)


def customer_entity() -> EntitySpec:
    return EntitySpec(
        name="customer",
        source_table="legacy",
        target_table="customer",
        source_key=("id",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(
            FieldSpec("ext", ("id",)),
            FieldSpec("name", ("name",), steps=(RuleStepSpec("trim"),), required=True),
            FieldSpec("age", ("age",)),
        ),
        filters=(FilterSpec("status", "ne", "deleted"),),
        dedupe_on=("name",),
    )


def orders_entity() -> EntitySpec:
    ref = RuleStepSpec("reference_lookup", {"entity": "customer"})
    return EntitySpec(
        name="orders",
        source_table="legacy",
        target_table="orders",
        source_key=("id",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        load_order=1,
        fields=(FieldSpec("ext", ("id",)), FieldSpec("customer_id", ("id",), steps=(ref,))),
    )


def snapshot() -> PlanSnapshot:
    return PlanSnapshot(plan="crm", version=1, entities=(customer_entity(), orders_entity()))


def run(tdb, entity, *, batch="b1", dry_run=False, key_range=None, **extra) -> BatchOutcome:
    return execute_batch(
        **extra,
        snapshot=snapshot(),
        entity=entity,
        key_range=key_range or KeyRange(),
        source=tdb.connector,
        target=tdb.connector,
        run_id="run-1",
        batch_id=batch,
        dry_run=dry_run,
    )


def ledger_tables(tdb) -> list[tuple]:
    if tdb.kind == "postgresql":
        return tdb.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mp_ledger'"
        )
    return tdb.execute("SELECT name FROM sqlite_master WHERE name LIKE 'mp_ledger%'")


def test_execute_batch_accounts_for_every_extracted_row(tdb):
    setup_tables(tdb)
    outcome = run(tdb, customer_entity())
    categories = sorted((f.source_key, f.stage, f.category) for f in outcome.failures)
    assert (
        outcome.extracted,
        outcome.loaded,
        outcome.failed,
        outcome.filtered,
        outcome.duplicates,
    ) == (20, 15, 3, 1, 1)
    assert outcome.extracted == (
        outcome.loaded + outcome.failed + outcome.filtered + outcome.duplicates
    )
    assert (outcome.inserted, outcome.updated, outcome.already_done) == (15, 0, False)
    assert categories == [
        ("2", "load", "type_cast"),
        ("5", "transform", "required_missing"),
        ("6", "load", "too_long"),
    ]
    assert tdb.execute("SELECT count(*) FROM customer") == [(15,)]
    # a missing source value reads back as None in the queue, never as "<NA>" or "nan"
    by_key = {f.source_key: f for f in outcome.failures}
    assert by_key["5"].source_row["name"] is None
    assert all(
        v not in ("<NA>", "nan", "None") for f in outcome.failures for v in f.source_row.values()
    )


def test_failure_rows_turn_every_kind_of_missing_value_into_none():
    from runs.engine.failure_rows import record as _record

    row = pd.Series({"a": pd.NA, "b": None, "c": float("nan"), "d": "x", "e": ""}, dtype=object)
    assert _record(row) == {"a": None, "b": None, "c": None, "d": "x", "e": ""}


def test_execute_batch_accounting_holds_across_key_ranges(tdb):
    setup_tables(tdb)
    ranges = tdb.connector.key_ranges("legacy", ["id"], 6)
    outcomes = [
        run(tdb, customer_entity(), batch=f"b{i}", key_range=r) for i, r in enumerate(ranges)
    ]
    assert sum(o.extracted for o in outcomes) == 20
    assert all(o.extracted == o.loaded + o.failed + o.filtered + o.duplicates for o in outcomes)


def test_execute_batch_retry_returns_stored_outcome_and_changes_nothing(tdb):
    setup_tables(tdb)
    first = run(tdb, customer_entity())
    checksum = tdb.connector.table_checksum("customer", ["id"])
    second = run(tdb, customer_entity())
    assert second.already_done is True
    assert (second.extracted, second.loaded, second.inserted, second.failed) == (20, 15, 15, 3)
    assert [f.message for f in second.failures] == [f.message for f in first.failures]
    assert tdb.connector.table_checksum("customer", ["id"]) == checksum


def test_execute_batch_dry_run_writes_nothing(tdb):
    setup_tables(tdb)
    before = tdb.connector.table_checksum("customer", ["id"])
    outcome = run(tdb, customer_entity(), dry_run=True)
    assert (outcome.extracted, outcome.loaded, outcome.failed) == (20, 15, 3)
    assert (outcome.inserted, outcome.updated) == (0, 0)
    assert tdb.connector.table_checksum("customer", ["id"]) == before
    assert ledger_tables(tdb) == []


def test_execute_batch_reference_lookup_uses_parent_keymap(tdb):
    setup_tables(tdb)
    run(tdb, customer_entity(), batch="c1")
    outcome = run(tdb, orders_entity(), batch="o1")
    pairs = tdb.execute(
        "SELECT o.ext, c.ext FROM orders o JOIN customer c ON c.id = o.customer_id ORDER BY o.id"
    )
    assert (outcome.loaded, outcome.failed) == (15, 5)
    assert {f.category for f in outcome.failures} == {"reference_missing"}
    assert all(a == b for a, b in pairs) and len(pairs) == 15


def test_execute_batch_dry_run_resolves_references_against_source_keys(tdb):
    setup_tables(tdb)
    outcome = run(tdb, orders_entity(), dry_run=True)
    assert (outcome.extracted, outcome.loaded, outcome.failed) == (20, 20, 0)
    assert ledger_tables(tdb) == []


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_load_batch_skip_unchanged_writes_only_changed_rows(kind, pg_params, sqlite_params):
    from runs.engine.connectors import connect
    from runs.engine.rollback import rollback_run
    from runs.engine.snapshot import EntitySpec, FieldSpec

    params = pg_params if kind == "postgresql" else sqlite_params
    conn = connect(kind, params)
    ddl = (
        "CREATE TABLE acct (id {pk}, ext varchar(10) UNIQUE NOT NULL, name varchar(20), "
        "amount numeric(8,2))"
    )
    pk = "bigserial PRIMARY KEY" if kind == "postgresql" else "INTEGER PRIMARY KEY"
    if kind == "postgresql":
        import psycopg2

        raw = psycopg2.connect(**params)
        with raw, raw.cursor() as cur:
            cur.execute(ddl.format(pk=pk))
        raw.close()
    else:
        with conn._tx(write=True) as raw:
            raw.execute(ddl.format(pk=pk))
    entity = EntitySpec(
        name="acct",
        source_table="s",
        target_table="acct",
        source_key=("k",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(FieldSpec(target="ext"), FieldSpec(target="name"), FieldSpec(target="amount")),
    )
    conn.ensure_ledger()

    def frame(names):
        return pd.DataFrame(
            {"ext": ["a", "b", "c"], "name": names, "amount": ["1.50", "2", None]}, dtype=object
        )

    first = conn.load_batch(
        entity=entity,
        rows=frame(["A", "B", "C"]),
        source_keys=["a", "b", "c"],
        run_id="r1",
        batch_id="1",
        namespace="n",
        result_meta={},
    )
    before = conn.table_checksum("acct", ["id"])
    second = conn.load_batch(
        entity=entity,
        rows=frame(["A", "B2", "C"]),
        source_keys=["a", "b", "c"],
        run_id="r2",
        batch_id="1",
        namespace="n",
        result_meta={},
        skip_unchanged=True,
    )
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (3, 0, 1, 2)
    assert second.loaded == 3
    assert conn.keymap_lookup("n", "acct", ["a", "b", "c"]).keys() == {"a", "b", "c"}
    summary = rollback_run(target=conn, run_id="r2")
    assert (summary.deleted, summary.restored) == (0, 1)
    assert conn.table_checksum("acct", ["id"]) == before
    conn.close()


def test_a_batch_leaves_no_cyclic_garbage_holding_its_rows(tdb):
    """A batch's frames, arrays and row dicts are freed by reference counting as soon as it
    ends, not whenever the garbage collector next runs: none of them may sit in a cycle."""
    import gc

    import numpy as np

    setup_tables(tdb)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run(tdb, customer_entity())
        gc.collect()
        kept = [o for o in gc.garbage if isinstance(o, pd.DataFrame | pd.Series | np.ndarray)]
        row_dicts = [o for o in gc.garbage if isinstance(o, dict) and "name" in o]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert kept == [] and row_dicts == []


def test_batch_refuses_a_retyped_or_missing_column_before_writing(tdb):
    setup_tables(tdb)
    entity = customer_entity()
    schema = tdb.connector.introspect()
    stored = {
        "source": {"legacy": table_schema(schema.table("legacy"))},
        "target": {"customer": table_schema(schema.table("customer"))},
    }
    retype = "ALTER TABLE customer ALTER COLUMN age TYPE bigint"
    if tdb.kind == "sqlite":  # SQLite cannot retype: rebuild the table with the new type
        retype = (
            "DROP TABLE customer; CREATE TABLE customer (id INTEGER PRIMARY KEY, "
            "ext varchar(20) NOT NULL UNIQUE, name varchar(10) NOT NULL, age BIGINT)"
        )
    tdb.script(retype)
    with pytest.raises(SchemaError) as refused:
        run(tdb, entity, stored_schema=stored)
    was, now = ("integer", "bigint") if tdb.kind == "postgresql" else ("INTEGER", "BIGINT")
    assert (
        f"target table “customer”, column “age”: retyped, was {was}, now {now} (used by field age)"
    ) in str(refused.value)
    tdb.script("ALTER TABLE legacy RENAME COLUMN name TO full_name")
    with pytest.raises(
        SchemaError, match="(?i)column “name”: column missing, was text, now missing"
    ):
        run(tdb, entity, stored_schema=stored)
    with pytest.raises(SchemaError, match="column “name”: column missing, was in the plan"):
        run(tdb, entity)  # no stored schema: the live table is still checked
    assert tdb.execute("SELECT count(*) FROM customer") == [(0,)]
    assert tdb.connector.batch_result("run-1", "b1") is None


class _CountingSource:
    """The real connector, counting the extracts a batch makes (a spy, not a mock)."""

    def __init__(self, connector):
        self._c, self.extracts, self.schema_reads = connector, [], 0

    def __getattr__(self, name):
        real = getattr(self._c, name)
        if name == "live_table":
            self.schema_reads += 1
        if name not in ("extract", "extract_text"):
            return real

        def counted(table, columns, *args, **kwargs):
            self.extracts.append(list(columns))
            return real(table, columns, *args, **kwargs)

        return counted


def test_failed_row_keeps_every_source_column_from_the_batch_s_one_read(tdb):
    setup_tables(tdb)
    tdb.script("ALTER TABLE legacy ADD COLUMN notes text; ALTER TABLE legacy ADD COLUMN zz text")
    tdb.script("UPDATE legacy SET notes = 'n' || id, zz = NULL")
    source = _CountingSource(tdb.connector)
    outcome = execute_batch(
        snapshot=snapshot(),
        entity=customer_entity(),
        key_range=KeyRange(),
        source=source,
        target=tdb.connector,
        run_id="run-1",
        batch_id="b1",
    )
    bob = next(f for f in outcome.failures if f.source_key == "2")
    assert bob.source_row == {
        "id": "2",
        "name": "Bob",
        "age": "abc",
        "status": "active",
        "notes": "n2",
        "zz": None,
    }
    assert list(bob.source_row) == ["id", "name", "age", "status", "notes", "zz"]
    assert all(set(f.source_row) >= {"notes", "zz"} for f in outcome.failures)
    # the columns the plan does not map come with the batch's read (one read, one snapshot)
    assert source.extracts == [["id", "name", "age", "status", "notes", "zz"]]
    assert source.schema_reads == 1  # the drift check's, which the completion uses too
    clean = _CountingSource(tdb.connector)
    outcome = execute_batch(
        snapshot=snapshot(),
        entity=customer_entity(),
        dry_run=True,
        key_range=KeyRange((6,), (20,)),
        source=clean,
        target=tdb.connector,
        run_id="run-2",
        batch_id="b1",
    )
    assert (outcome.failed, outcome.loaded) == (0, 14)
    assert clean.extracts == [["id", "name", "age", "status", "notes", "zz"]]


def test_failed_rows_are_completed_from_one_read_recording_only_the_failed_rows(tdb):
    from runs.engine import failure_rows

    setup_tables(tdb)
    tdb.script("ALTER TABLE legacy ADD COLUMN note text")
    tdb.execute("UPDATE legacy SET note = 'n' || id")
    before = failure_rows.RECORDED["rows"]
    outcome = run(tdb, customer_entity())
    # 20 rows read for the column the plan does not extract; only the 3 failures recorded
    assert failure_rows.RECORDED["rows"] - before == len(outcome.failures) == 3
    for failure in outcome.failures:
        assert list(failure.source_row) == ["id", "name", "age", "status", "note"]
        assert failure.source_row["note"] == f"n{failure.source_key}"


def test_a_batch_hashes_its_rows_once_for_the_failures_and_the_row_state():
    """The source hashes computed once a batch equal each row's ``row_hash`` of its
    extracted values: the loaded rows' in the state (with the range digest over every row),
    each failure's by its source key (the last of a repeated key)."""
    from runs.engine.batch import _hashed, source_columns
    from runs.engine.failure_rows import failure_source_hashes
    from runs.engine.hashing import row_hash
    from runs.engine.transform import RowFailure
    from runs.engine.unchanged import RowState, frame_source_hashes, range_digest

    entity = customer_entity()
    columns = source_columns(entity)
    frame = pd.DataFrame(
        [[str(i), n, a, s] for i, n, a, s in LEGACY] + [["2", "Bob again", None, "active"]],
        columns=["id", "name", "age", "status"],
        dtype="string[pyarrow]",
    )
    every = frame_source_hashes(frame, columns)
    values = frame[columns].astype(object).itertuples(index=False)
    reference = [row_hash([None if pd.isna(v) else v for v in r]) for r in values]
    assert every == reference
    failures = [RowFailure(k, {}, {}, "transform") for k in ("2", "5", "99")]
    failure_source_hashes(failures, frame, entity, every)
    assert [f.source_hash for f in failures] == [reference[-1], reference[4], ""]
    rows = frame.iloc[[0, 3, 7]]
    first = _hashed(RowState("r", [], "1", "20"), frame, rows, every)
    assert first.source_hashes == [reference[0], reference[3], reference[7]]
    assert first.digest == range_digest(reference)
    again = _hashed(RowState("r", [], "1", "20", digest="d"), frame, rows, every)
    assert (again.source_hashes, again.digest) == (first.source_hashes, "d")
    repeated = frame.set_axis([0, 1] * (len(frame) // 2) + [0] * (len(frame) % 2))
    odd = _hashed(RowState("r", [], "1", "2"), repeated, repeated.iloc[[1]], every)
    assert odd.source_hashes == [reference[i] for i in range(1, len(frame), 2)]
