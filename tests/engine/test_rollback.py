"""Rollback on PostgreSQL and SQLite: every scenario must restore the exact pre-run checksum."""

from __future__ import annotations

import pandas as pd
import pytest

from runs.engine.connectors.base import text_frame
from runs.engine.rollback import rollback_run
from runs.engine.snapshot import EntitySpec, FieldSpec

COLUMNS = ["ext", "name", "age", "score", "seen", "note"]


def setup_target(tdb) -> None:
    key = "id serial PRIMARY KEY" if tdb.kind == "postgresql" else "id INTEGER PRIMARY KEY"
    tdb.script(
        f"CREATE TABLE customer ({key}, ext varchar(20) NOT NULL UNIQUE, "
        "name varchar(10) NOT NULL, age integer, score numeric(8,2), seen timestamp, "
        "note text)"
    )
    ph = "%s" if tdb.kind == "postgresql" else "?"
    for i in range(10):  # pre-existing rows: E00000..E00009, some NULLs and empty strings
        tdb.execute(
            f"INSERT INTO customer (ext, name, age, score, seen, note) "
            f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph})",
            (
                f"E{i:05d}",
                f"old{i}",
                None if i % 3 == 0 else i,
                "12.50",
                f"2023-05-0{1 + i % 9} 08:30:00",
                "" if i % 2 else None,
            ),
        )


def entity(mode: str) -> EntitySpec:
    return EntitySpec(
        name="customer",
        source_table="src",
        target_table="customer",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode=mode,
        fields=tuple(FieldSpec(c, (c,)) for c in COLUMNS),
    )


def rows(start: int, n: int, tag: str = "new") -> pd.DataFrame:
    idx = range(start, start + n)
    return text_frame(
        COLUMNS,
        {
            "ext": [f"E{i:05d}" for i in idx],
            "name": [f"{tag}{i}" for i in idx],
            "age": [str(i) for i in idx],
            "score": ["99.10"] * n,
            "seen": ["2024-12-31 23:59:59"] * n,
            "note": [f"n{i}" for i in idx],
        },
    )


def load(tdb, mode: str, batch: str, frame: pd.DataFrame, run: str = "run-1"):
    return tdb.connector.load_batch(
        entity=entity(mode),
        rows=frame,
        source_keys=list(frame["ext"]),
        run_id=run,
        batch_id=batch,
        namespace="plan",
        result_meta={},
    )


def checksum(tdb):
    return tdb.connector.table_checksum("customer", ["id"])


def test_rollback_after_insert_run_restores_pre_run_checksum(tdb):
    setup_target(tdb)
    before = checksum(tdb)
    for b in range(3):
        load(tdb, "insert", f"b{b}", rows(100 + b * 20, 20))
    summary = rollback_run(target=tdb.connector, run_id="run-1")
    assert (summary.batches, summary.deleted, summary.restored) == (3, 60, 0)
    assert checksum(tdb) == before


def test_rollback_after_upsert_run_that_overwrote_rows_restores_pre_run_checksum(tdb):
    setup_target(tdb)
    before = checksum(tdb)
    load(tdb, "upsert", "b0", rows(5, 10))  # overwrites E00005..E00009, inserts 5
    load(tdb, "upsert", "b1", rows(8, 10, "again"))  # overwrites rows b0 touched too
    changed = checksum(tdb)
    summary = rollback_run(target=tdb.connector, run_id="run-1")
    assert changed != before
    assert (summary.batches, summary.deleted, summary.restored) == (2, 8, 12)
    assert checksum(tdb) == before
    assert tdb.connector.keymap_lookup("plan", "customer", ["E00005", "E00017"]) == {}


def test_rollback_after_run_that_failed_half_way_restores_pre_run_checksum(tdb):
    setup_target(tdb)
    before = checksum(tdb)
    load(tdb, "upsert", "b0", rows(0, 4))
    load(tdb, "insert", "b1", rows(50, 5))
    with pytest.raises(Exception):  # noqa: B017 -- a driver integrity error aborts batch b2
        load(tdb, "insert", "b2", rows(60, 5).assign(ext=["X1", "X2", "X3", "X1", "X5"]))
    assert tdb.connector.ledger_batches("run-1") == ["b0", "b1"]
    rollback_run(target=tdb.connector, run_id="run-1")
    assert checksum(tdb) == before


def test_rollback_twice_is_a_no_op(tdb):
    setup_target(tdb)
    load(tdb, "upsert", "b0", rows(5, 10))
    rollback_run(target=tdb.connector, run_id="run-1")
    after_first = checksum(tdb)
    second = rollback_run(target=tdb.connector, run_id="run-1")
    again = tdb.connector.rollback_batch("run-1", "b0")
    assert (second.batches, second.deleted, second.restored) == (0, 0, 0)
    assert (again.found, again.deleted, again.restored, again.keymap_deleted) == (False, 0, 0, 0)
    assert checksum(tdb) == after_first


def test_rollback_resumes_after_a_crash_between_batches(tdb):
    setup_target(tdb)
    before = checksum(tdb)
    for b in range(3):
        load(tdb, "upsert", f"b{b}", rows(b * 4, 6, f"r{b}"))
    tdb.connector.rollback_batch("run-1", "b2")  # the "crashed" rollback got this far
    progress = []
    summary = rollback_run(
        target=tdb.connector,
        run_id="run-1",
        on_progress=lambda done, total, r: progress.append((done, total, r.batch_id)),
    )
    assert progress == [(1, 2, "b1"), (2, 2, "b0")]
    assert summary.batches == 2
    assert checksum(tdb) == before


def test_rollback_leaves_other_runs_alone(tdb):
    setup_target(tdb)
    load(tdb, "insert", "b0", rows(100, 3), run="keep")
    kept = checksum(tdb)
    load(tdb, "insert", "b0", rows(200, 3), run="undo")
    rollback_run(target=tdb.connector, run_id="undo")
    assert checksum(tdb) == kept
    assert tdb.connector.ledger_batches("keep") == ["b0"]


def test_rollback_with_a_fresh_connector_restores_checksum(tmp_path):
    """A rollback in a new process (nothing introspected yet) must not nest transactions."""
    from runs.engine.connectors import connect
    from runs.engine.rollback import rollback_run

    path = tmp_path / "fresh.sqlite3"
    writer = connect("sqlite", {"path": str(path), "allowed_root": str(path.parent)})
    with writer._tx(write=True) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, ext TEXT UNIQUE, v TEXT)")
    before = writer.table_checksum("t", ["id"])
    import pandas as pd

    from runs.engine.snapshot import EntitySpec, FieldSpec

    entity = EntitySpec(
        name="t",
        source_table="s",
        target_table="t",
        source_key=("k",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(FieldSpec(target="ext"), FieldSpec(target="v")),
    )
    writer.ensure_ledger()
    writer.load_batch(
        entity=entity,
        rows=pd.DataFrame({"ext": ["a", "b"], "v": ["1", "2"]}, dtype=object),
        source_keys=["a", "b"],
        run_id="r1",
        batch_id="b1",
        namespace="n",
        result_meta={},
    )
    writer.close()
    fresh = connect("sqlite", {"path": str(path), "allowed_root": str(path.parent)})
    summary = rollback_run(target=fresh, run_id="r1")
    assert (summary.batches, summary.deleted) == (1, 2)
    assert fresh.table_checksum("t", ["id"]) == before
