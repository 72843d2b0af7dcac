"""Source deletes on PostgreSQL and SQLite targets: key-set difference against the ledger's key
map, delete / mark policies, idempotency, and rollback back to the pre-run checksum."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runs.engine.batch import execute_batch
from runs.engine.connectors.base import KeyRange
from runs.engine.deletes import apply_deletes, delete_batch_id
from runs.engine.errors import EngineError
from runs.engine.rollback import rollback_run
from runs.engine.snapshot import EntitySpec, FieldSpec, PlanSnapshot

N = 12


def setup(tdb) -> None:
    key = "id serial PRIMARY KEY" if tdb.kind == "postgresql" else "id INTEGER PRIMARY KEY"
    tdb.script(
        "CREATE TABLE src (ext varchar(20) PRIMARY KEY, name text);"
        f"CREATE TABLE customer ({key}, ext varchar(20) NOT NULL UNIQUE, name text, "
        "status text, deleted_at timestamp)"
    )
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for i in range(N):
        tdb.execute(f"INSERT INTO src VALUES ({ph}, {ph})", (f"E{i:03d}", f"n{i}"))
    # a target row the plan never wrote: never deleted, whatever the source says
    tdb.execute("INSERT INTO customer (ext, name) VALUES ('FOREIGN', 'kept')")


def entity(policy: str = "delete", column: str | None = None, value: str | None = None):
    return EntitySpec(
        name="customer",
        source_table="src",
        target_table="customer",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(FieldSpec("ext", ("ext",)), FieldSpec("name", ("name",))),
        delete_policy=policy,
        delete_mark_column=column,
        delete_mark_value=value,
    )


def snap(ent: EntitySpec, batch_size: int = 5) -> PlanSnapshot:
    return PlanSnapshot(plan="plan", version=1, entities=(ent,), batch_size=batch_size)


def full_load(tdb, ent: EntitySpec) -> None:
    out = execute_batch(
        snapshot=snap(ent),
        entity=ent,
        key_range=KeyRange(),
        source=tdb.connector,
        target=tdb.connector,
        run_id="run-1",
        batch_id="customer:1",
    )
    assert out.loaded == N


def remove_from_source(tdb, *exts: str) -> None:
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for ext in exts:
        tdb.execute(f"DELETE FROM src WHERE ext = {ph}", (ext,))


def run_deletes(tdb, ent: EntitySpec, run: str = "run-2", **kw):
    return apply_deletes(
        snapshot=snap(ent),
        entity=ent,
        source=tdb.connector,
        target=tdb.connector,
        run_id=run,
        batch_prefix="customer:2",
        **kw,
    )


def checksum(tdb):
    return tdb.connector.table_checksum("customer", ["id"])


def exts(tdb) -> list[str]:
    return [r[0] for r in tdb.execute("SELECT ext FROM customer ORDER BY ext")]


def test_delete_policy_removes_rows_gone_from_source_and_rollback_restores_them(tdb):
    setup(tdb)
    ent = entity("delete")
    full_load(tdb, ent)
    remove_from_source(tdb, "E001", "E004", "E005", "E011")
    before = checksum(tdb)
    outcome = run_deletes(tdb, ent, page_size=3)  # 12 keys in pages of 3: bounded memory
    assert (outcome.checked, outcome.missing, outcome.deleted) == (N, 4, 4)
    assert len(outcome.batches) == 2  # 4 missing keys, 3 per batch
    assert "E004" not in exts(tdb) and "FOREIGN" in exts(tdb)
    assert checksum(tdb).rows == before.rows - 4
    assert tdb.connector.keymap_lookup("plan", "customer", ["E004", "E002"]).keys() == {"E002"}
    again = run_deletes(tdb, ent, run="run-3", page_size=3)  # nothing left to delete
    assert (again.checked, again.missing, again.deleted) == (N - 4, 0, 0)
    summary = rollback_run(target=tdb.connector, run_id="run-2")
    assert (summary.batches, summary.restored) == (2, 4)
    assert checksum(tdb) == before
    assert len(tdb.connector.keymap_lookup("plan", "customer", ["E001", "E011"])) == 2


def test_delete_batch_retried_with_same_keys_is_done_once(tdb):
    setup(tdb)
    ent = entity("delete")
    full_load(tdb, ent)
    remove_from_source(tdb, "E003")
    keys = ["E003"]
    bid = delete_batch_id("customer:2", keys)
    kw = dict(entity=ent, source_keys=keys, run_id="run-2", batch_id=bid, namespace="plan")
    first = tdb.connector.delete_batch(**kw)
    second = tdb.connector.delete_batch(**kw)
    assert (first.deleted, first.already_done) == (1, False)
    assert (second.deleted, second.already_done) == (1, True)
    assert len(exts(tdb)) == N  # 12 loaded + FOREIGN - 1


@pytest.mark.parametrize("value", ["deleted", "now"])
def test_mark_policy_sets_the_column_once_and_rollback_restores(tdb, value):
    setup(tdb)
    column = "status" if value == "deleted" else "deleted_at"
    ent = entity("mark", column, value)
    full_load(tdb, ent)
    remove_from_source(tdb, "E000", "E007")
    before = checksum(tdb)
    outcome = run_deletes(tdb, ent)
    assert (outcome.missing, outcome.marked, outcome.deleted) == (2, 2, 0)
    marked = tdb.execute(f"SELECT ext FROM customer WHERE {column} IS NOT NULL ORDER BY ext")
    assert [r[0] for r in marked] == ["E000", "E007"]
    assert len(exts(tdb)) == N + 1  # rows stay
    again = run_deletes(tdb, ent, run="run-3")  # already marked: nothing changes
    assert (again.missing, again.marked) == (2, 0)
    rollback_run(target=tdb.connector, run_id="run-2")
    assert checksum(tdb) == before


def test_ignore_policy_and_dry_run_change_nothing(tdb):
    setup(tdb)
    ent = entity("delete")
    full_load(tdb, ent)
    remove_from_source(tdb, "E002")
    before = checksum(tdb)
    assert run_deletes(tdb, replace(ent, delete_policy="ignore")).checked == 0
    dry = run_deletes(tdb, ent, dry_run=True)
    assert (dry.missing, dry.deleted) == (1, 0)
    assert checksum(tdb) == before


def test_mark_policy_without_a_column_is_refused(tdb):
    setup(tdb)
    with pytest.raises(EngineError, match="needs a mark column"):
        run_deletes(tdb, entity("mark"))
