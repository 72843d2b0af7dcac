"""Sync runs (full load + CDC) on real PostgreSQL: the service driven by `manage.py cdc_sync`
processes, one killed with SIGKILL in the full load, one mid-stream, each restarted, under a
concurrent source writer; drained on stop, the target equals the transformed final source;
rollback verifies."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

from mappings.services import plan_version_create
from migration_planner.lib.errors import ApplicationError
from runs.connections import connector_for
from runs.engine.cdc.slot import slot_info
from runs.engine.connectors.base import KeyRange
from runs.engine.transform import transform_frame
from runs.enums import RunMode, RunStatus
from runs.models import Rollback, Run
from runs.services import run_create, run_rollback_request, sync_stop
from runs.services.cdc import slot_name
from runs.services.state import run_snapshot
from tests.factories import SystemFactory
from tests.runs.conftest import ROOT, _worker_env
from tests.support import pg
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _spawn(*args):
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=_worker_env())


def _wait_for(check, what):
    for _ in range(900):  # bounded: 900 x 0.1 s
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _cdc(run) -> dict:
    return Run.objects.values_list("cdc", flat=True).get(pk=run.pk)


def _oracle(run) -> set[tuple]:
    entity = run_snapshot(run).entity("src")
    frame = connector_for(run.plan.source).extract(
        "src", ["id", "name", "amount"], ["id"], KeyRange()
    )
    rows = transform_frame(entity=entity, frame=frame).text_rows.astype(object)
    return {(r.ext, r.name, r.amount) for r in rows.itertuples()}


def _md5(rows) -> tuple[int, str]:
    text = "\n".join("|".join("" if v is None else str(v) for v in r) for r in sorted(rows))
    return len(rows), hashlib.md5(text.encode()).hexdigest()


HOLD = """CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.ext = '150' THEN PERFORM pg_sleep(600); END IF; RETURN NEW; END $$"""


def _held_backends(tgt) -> list[int]:
    return [
        r[0]
        for r in pg.query(
            "postgres",
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event = 'PgSleep'",
            (tgt,),
        )
    ]


def test_sync_under_writes_survives_kills_in_full_load_and_stream_drains_and_rolls_back(
    sync_plan, eager_celery, operator
):
    plan, src, tgt = sync_plan
    version = plan_version_create(plan=plan, user=None, note="sync test")
    run = Run.objects.create(plan=plan, version=version, target=plan.target, mode=RunMode.SYNC)
    params = json.dumps(plan.source.connection_params())
    # The full load's 2nd batch (ids 101-200) sleeps inside its target transaction on id 150.
    pg.query(tgt, HOLD)
    pg.query(tgt, "CREATE TRIGGER hold BEFORE INSERT ON tgt FOR EACH ROW EXECUTE FUNCTION hold()")
    writer = _spawn("-m", "tests.support.cdc_load", "write", params, "800", "11", "5000", "0.025")
    first = _spawn("manage.py", "cdc_sync", str(run.uuid))
    _wait_for(lambda: _held_backends(tgt), "the full load to reach its 2nd batch")
    assert _cdc(run)["phase"] == "full_load"
    assert run.batches.filter(status="done").count() == 1
    os.kill(first.pid, signal.SIGKILL)  # the worker dies in the full load; its snapshot too
    first.wait()
    for pid in _held_backends(tgt):  # its target transaction is aborted, as the server would
        pg.query("postgres", "SELECT pg_terminate_backend(%s)", (pid,))
    pg.query(tgt, "DROP TRIGGER hold ON tgt")
    # as if it had died after batch 1's target commit, before recording it here; and batch 1's
    # range changes meanwhile: batch 1 still counts as read in the first snapshot
    run.batches.filter(seq=1).update(status="running")
    pg.query(src, "DELETE FROM src WHERE id = (SELECT min(id) FROM src WHERE id <= 100)")
    second = _spawn("manage.py", "cdc_sync", str(run.uuid))
    _wait_for(
        lambda: _cdc(run).get("phase") == "streaming" and _cdc(run).get("events_total", 0) > 30,
        "the sync to stream some changes",
    )
    os.kill(second.pid, signal.SIGKILL)
    second.wait()
    third = _spawn("manage.py", "cdc_sync", str(run.uuid))
    assert writer.wait(timeout=180) == 0
    sync_stop(run=run, user=operator)
    assert third.wait(timeout=180) == 0
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.logs.filter(message__startswith="Resuming the full load").count() == 1
    done = [(i, "done") for i in range(1, run.batches_total + 1)]
    assert run.batches_total >= 4 and list(run.batches.values_list("seq", "status")) == done
    rows = pg.query(tgt, "SELECT ext, name, amount::text FROM tgt")
    assert len(rows) == len({r[0] for r in rows})  # 0 duplicates
    assert set(rows) == _oracle(run)  # 0 missed: the transformed final source
    assert _md5(rows) == _md5(_oracle(run))  # same keys, same content (count, md5)
    assert run.deleted > 0 and run.failed == 0
    assert run.cdc["drained"] and run.cdc["events"]["public.src"]["update"] > 0
    assert {"lag_seconds", "lag_bytes", "events_per_s", "retained_bytes"} <= set(run.cdc)
    assert slot_info(plan.source.connection_params(), slot_name(run)) is None  # dropped
    report = run_report_build(run=run, reason="test")  # what the after-run hook queues
    assert report.verdict != "fail", report.data
    assert all(d.get("clean", True) for d in report.data["key_diffs"].values())
    run_rollback_request(run=run, user=operator)
    assert Rollback.objects.get(run=run).status == "verified"
    assert pg.query(tgt, "SELECT count(*) FROM tgt") == [(0,)]


def test_sync_to_a_sqlite_target_is_refused_with_the_reason(sync_plan):
    plan, _, _ = sync_plan
    sqlite = SystemFactory(name="Lite", role="target")
    with pytest.raises(ApplicationError, match="applies changes to PostgreSQL targets only"):
        run_create(plan=plan, user=None, target=sqlite, mode="sync")
    assert not Run.objects.exists()


def test_sync_from_a_mysql_source_is_refused_pointing_to_delta_runs(sync_plan):
    plan, _, _ = sync_plan
    plan.source = SystemFactory(
        name="Legacy MariaDB",
        kind="mysql",
        path="",
        host="127.0.0.1",
        database="crm",
        role="source",
    )
    plan.save()
    with pytest.raises(ApplicationError) as caught:
        run_create(plan=plan, user=None, mode="sync")
    assert "“Legacy MariaDB” is a MySQL / MariaDB source" in caught.value.message
    assert "PostgreSQL logical decoding only (use delta runs" in caught.value.message
    assert not Run.objects.exists()


def test_sync_of_a_plan_with_an_insert_entity_is_refused_naming_it(sync_plan):
    plan, _, _ = sync_plan
    plan.entities.update(load_mode="insert")
    with pytest.raises(ApplicationError, match="these load with insert: src"):
        run_create(plan=plan, user=None, mode="sync")
    assert not Run.objects.exists()


def test_sync_from_a_user_without_replication_is_refused_in_the_api_with_what_to_grant(
    sync_plan, operator, client_for
):
    plan, src, _ = sync_plan
    pg.admin_exec('DROP ROLE IF EXISTS "mp_no_replication"')
    pg.admin_exec('CREATE ROLE "mp_no_replication" LOGIN')
    user = plan.source.username
    try:
        plan.source.username = "mp_no_replication"
        plan.source.save()
        response = client_for(operator).post(
            "/api/runs/", {"plan": plan.slug, "mode": "sync"}, content_type="application/json"
        )
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert 'ALTER ROLE "mp_no_replication" REPLICATION' in detail
        assert "delta runs" in detail
        assert not Run.objects.exists()
    finally:
        plan.source.username = user
        plan.source.save()
        pg.admin_exec('DROP ROLE IF EXISTS "mp_no_replication"')


def test_run_finish_leaves_a_streaming_sync_to_its_own_task(sync_plan):
    from runs.services import run_finish

    plan, _, _ = sync_plan
    version = plan_version_create(plan=plan, user=None, note="sync test")
    run = Run.objects.create(
        plan=plan,
        version=version,
        target=plan.target,
        mode=RunMode.SYNC,
        status=RunStatus.RUNNING,
        cdc={"phase": "streaming"},
    )
    assert run_finish(run_id=run.pk).status == RunStatus.RUNNING


def test_sync_whose_slot_waits_past_the_timeout_fails_naming_the_open_transaction(
    sync_plan, eager_celery, settings
):
    from runs.services import sync_run

    plan, src, _ = sync_plan
    settings.MP_CDC_SLOT_TIMEOUT_SECONDS = 1
    version = plan_version_create(plan=plan, user=None, note="sync test")
    run = Run.objects.create(plan=plan, version=version, target=plan.target, mode=RunMode.SYNC)
    blocker = psycopg2.connect(**{**pg.admin_params(), "dbname": src})
    try:
        with blocker.cursor() as cur:
            cur.execute("UPDATE src SET name = name WHERE id = 1 RETURNING pg_backend_pid()")
            pid = cur.fetchone()[0]
        sync_run(run_id=run.pk)
    finally:
        blocker.close()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "creating replication slot" in run.error and "timed out after 1 s" in run.error
    assert f"pid {pid} (database {src}, user " in run.error, run.error
    assert "idle in transaction since" in run.error and "pg_terminate_backend" in run.error
    assert [b["pid"] for b in run.cdc["slot_wait"]["blockers"]] == [pid]  # shown while waiting
    assert slot_info(plan.source.connection_params(), slot_name(run)) is None  # none left
    assert not run.batches.exists()


def test_sync_cancelled_while_its_slot_waits_ends_at_once_leaving_no_slot(
    sync_plan, eager_celery, operator
):
    from django.db import connection

    from runs.services import run_cancel, sync_run

    plan, src, _ = sync_plan
    version = plan_version_create(plan=plan, user=None, note="sync test")
    run = Run.objects.create(plan=plan, version=version, target=plan.target, mode=RunMode.SYNC)
    blocker = psycopg2.connect(**{**pg.admin_params(), "dbname": src})

    def cancel_once_waiting() -> None:
        try:
            _wait_for(lambda: _cdc(run).get("slot_wait", {}).get("blockers"), "the slot wait")
            run_cancel(run=Run.objects.get(pk=run.pk), user=operator)
        finally:
            connection.close()

    canceller = threading.Thread(target=cancel_once_waiting)
    try:
        with blocker.cursor() as cur:
            cur.execute("UPDATE src SET name = name WHERE id = 1")
        canceller.start()
        sync_run(run_id=run.pk)  # returns on the cancel, not at the 300 s timeout
    finally:
        canceller.join()
        blocker.close()
    run.refresh_from_db()
    assert run.status in (RunStatus.CANCELLING, RunStatus.CANCELLED)
    assert run.logs.filter(message__startswith="Sync abandoned").count() == 1
    assert slot_info(plan.source.connection_params(), slot_name(run)) is None
    assert not run.batches.exists()
