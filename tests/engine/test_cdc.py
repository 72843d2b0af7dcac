"""Change data capture on real PostgreSQL: parsing test_decoding, the slot's exported snapshot
plus the stream under a concurrent write load, a streaming worker killed with SIGKILL and
restarted, rollback, and the messages for a source that cannot stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest

from runs.engine.batch import execute_batch
from runs.engine.cdc.apply import checkpoint_read
from runs.engine.cdc.decoding import Change, Commit, parse_message
from runs.engine.cdc.slot import (
    CdcSetupError,
    SlotWaitTimeout,
    SnapshotSource,
    cdc_check,
    slot_create,
    slot_drop,
    slot_info,
)
from runs.engine.connectors.base import KeyRange
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.errors import EngineError
from runs.engine.rollback import rollback_run
from runs.engine.snapshot import EntitySpec, FieldSpec, PlanSnapshot, RuleStepSpec
from runs.engine.transform import transform_frame
from tests.engine.conftest import _admin_exec, pg_admin_params

ROOT = Path(__file__).resolve().parents[2]
ENTITY = EntitySpec(
    name="src",
    source_table="src",
    target_table="tgt",
    source_key=("id",),
    target_key="id",
    external_id="ext",
    load_mode="upsert",
    delete_policy="delete",
    fields=(
        FieldSpec("ext", ("id",)),
        FieldSpec("name", ("name",), (RuleStepSpec("upper"),)),
        FieldSpec("amount", ("amount",)),
    ),
)
SNAPSHOT = PlanSnapshot(plan="cdc-plan", version=1, entities=(ENTITY,), batch_size=50)


def test_parse_message_reads_test_decoding_lines():
    change = parse_message(
        'table public."Src": UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 '
        "\"A b\"[character varying(20)]:'it''s' ok[boolean]:true n[numeric]:12.50 z[text]:null"
    )
    assert change == Change(
        "update",
        "public",
        "Src",
        {"id": "2", "A b": "it's", "ok": "t", "n": "12.50", "z": None},
        old_key={"id": "1"},
    )
    assert parse_message("table public.src: DELETE: id[integer]:5").values == {"id": "5"}
    assert parse_message("COMMIT (at 2026-12-06 12:10:00.5+00)").at.microsecond == 500000
    assert isinstance(parse_message("COMMIT"), Commit)
    with pytest.raises(EngineError, match="no row data"):
        parse_message("table public.nokey: DELETE: (no-tuple-data)")


@pytest.fixture
def cdc_dbs():
    """A source and a target database; any slot left on the source is dropped first."""
    names = [f"cdc_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("src", "tgt")]
    for name in names:
        _admin_exec(f'CREATE DATABASE "{name}"')
    params = [{**pg_admin_params(), "dbname": n} for n in names]
    try:
        yield params
    finally:
        conn = psycopg2.connect(**pg_admin_params())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (names[0],)
            )
            slots = [r[0] for r in cur.fetchall()]
        conn.close()
        for slot in slots:
            slot_drop(params[0], slot)
        for name in names:
            _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _exec(params, statement, args=None):
    conn = psycopg2.connect(**params)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def _setup(src, tgt, rows=300):
    _exec(src, "CREATE TABLE src (id integer PRIMARY KEY, name text, amount numeric(10,2))")
    _exec(
        src,
        "INSERT INTO src SELECT g, 'name ' || g, g * 1.25 FROM generate_series(1, %s) g",
        (rows,),
    )
    _exec(
        tgt,
        "CREATE TABLE tgt (id serial PRIMARY KEY, ext text NOT NULL UNIQUE, name text, "
        "amount numeric(10,2))",
    )


def _oracle(src) -> set[tuple]:
    """The final source through the plan's transform: what the target must hold."""
    frame = PostgresConnector(src).extract("src", ["id", "name", "amount"], ["id"], KeyRange())
    rows = transform_frame(entity=ENTITY, frame=frame).text_rows
    return {(r.ext, r.name, r.amount) for r in rows.astype(object).itertuples()}


def _target_rows(tgt) -> list[tuple]:
    return _exec(tgt, "SELECT ext, name, amount::text FROM tgt")


def _spawn(*args):
    return subprocess.Popen([sys.executable, "-m", "tests.support.cdc_load", *args], cwd=ROOT)


def _wait_for(check, what, limit=600):
    for _ in range(limit):  # bounded: 600 x 0.1 s
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_full_load_plus_stream_under_writes_survives_kill_and_equals_transformed_source(
    cdc_dbs, tmp_path
):
    src, tgt = cdc_dbs
    _setup(src, tgt)
    target = PostgresConnector(tgt)
    before = target.table_checksum("tgt", ["id"])
    writer = _spawn("write", json.dumps(src), "400", "7", "1000")
    _wait_for(
        lambda: _exec(src, "SELECT count(*) FROM src WHERE id >= 1000")[0][0] > 0,
        "the writer's first insert",
    )
    slot = slot_create(src, "mp_test_sync")
    with pytest.raises(EngineError, match="already exists"):  # never reused silently
        slot_create(src, "mp_test_sync")
    source = SnapshotSource(src, slot.snapshot)
    for i, key_range in enumerate(source.key_ranges("src", ["id"], 50)):
        execute_batch(
            snapshot=SNAPSHOT,
            entity=ENTITY,
            key_range=key_range,
            source=source,
            target=target,
            run_id="sync-1",
            batch_id=f"src:{i}",
        )
    source.close()
    slot.close()
    stop, progress = tmp_path / "stop", tmp_path / "progress"
    config = json.dumps(
        {
            "snapshot": SNAPSHOT.to_dict(),
            "source": src,
            "target": tgt,
            "slot": "mp_test_sync",
            "run_id": "sync-1",
            "start_lsn": slot.lsn,
            "stop": str(stop),
            "progress": str(progress),
            "group_size": 40,
        }
    )
    first = _spawn("stream", config)
    _wait_for(
        lambda: progress.exists() and int(progress.read_text() or 0) > 50,
        "the worker to apply some changes",
    )
    os.kill(first.pid, signal.SIGKILL)  # mid-stream, the writer still writing
    first.wait()
    applied_before_kill = checkpoint_read(target, "mp_test_sync")[0]
    second = _spawn("stream", config)
    assert writer.wait(timeout=120) == 0
    stop.touch()
    assert second.wait(timeout=120) == 0
    lsn, counters = checkpoint_read(target, "mp_test_sync")
    assert lsn > applied_before_kill
    rows = _target_rows(tgt)
    assert len(rows) == len({r[0] for r in rows})  # 0 duplicates
    assert set(rows) == _oracle(src)  # 0 missed, 0 stale: the transformed final source
    assert counters.failed == 0 and counters.deleted > 0 and counters.updated > 0
    assert slot_drop(src, "mp_test_sync") and slot_info(src, "mp_test_sync") is None
    rollback_run(target=target, run_id="sync-1")
    assert target.table_checksum("tgt", ["id"]) == before


def test_a_user_without_replication_rights_is_told_what_to_grant(cdc_dbs):
    src, _ = cdc_dbs
    role = f"noreplic_{uuid.uuid4().hex[:8]}"
    _admin_exec(f'CREATE ROLE "{role}" LOGIN')
    try:
        with pytest.raises(CdcSetupError) as caught:
            cdc_check({**src, "user": role})
        assert f'ALTER ROLE "{role}" REPLICATION' in str(caught.value)
        assert "delta runs" in str(caught.value)
    finally:
        _admin_exec(f'DROP ROLE "{role}"')


def test_a_source_without_logical_wal_level_is_told_what_to_change(tmp_path):
    """A private PostgreSQL cluster started with wal_level=replica."""
    from tests.support.pg_cluster import temporary_cluster

    with (
        temporary_cluster(tmp_path, "-c wal_level=replica") as params,
        pytest.raises(CdcSetupError) as caught,
    ):
        cdc_check(params)
    assert "wal_level = replica" in str(caught.value)
    assert "ALTER SYSTEM SET wal_level = logical" in str(caught.value)


def test_slot_creation_names_the_open_transaction_it_waits_for_and_times_out_leaving_no_slot(
    cdc_dbs,
):
    """PostgreSQL creates a logical slot once every transaction holding an xid when it started
    has ended, on ANY database of the server: one left open elsewhere holds it up."""
    src, tgt = cdc_dbs
    blocker = psycopg2.connect(**tgt)  # another database of the same server
    with blocker.cursor() as cur:
        cur.execute("SELECT txid_current(), pg_backend_pid()")
        pid = cur.fetchone()[1]
    seen: list[list[int]] = []
    try:
        with pytest.raises(SlotWaitTimeout) as caught:
            slot_create(
                src,
                "mp_test_wait",
                on_wait=lambda s, blockers: seen.append([b["pid"] for b in blockers]),
                timeout=1.5,
                report_every=0.3,
            )
        message = str(caught.value)
        assert f"pid {pid} (database {tgt['dbname']}" in message
        assert "idle in transaction since" in message and "pg_terminate_backend" in message
        assert seen and all(pids == [pid] for pids in seen)
        assert slot_info(src, "mp_test_wait") is None  # cancelled: no slot left behind

        def release(seconds, blockers):
            if blocker.status != psycopg2.extensions.STATUS_READY:
                blocker.rollback()  # the operator ends the transaction: creation goes on

        slot = slot_create(src, "mp_test_wait", on_wait=release, timeout=60, report_every=0.3)
        slot.close()
        assert slot_info(src, "mp_test_wait") is not None
    finally:
        blocker.close()
