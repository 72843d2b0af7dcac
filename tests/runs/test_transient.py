"""A database that restarts or cannot be reached (ours, a source, a target) is a transient
error: the batch goes back to pending and is retried, never failed, never parked; only
attempts that lost their worker count towards parking. Real PostgreSQL: connections are
terminated by the server (pg_terminate_backend) or pointed at a port nothing listens on."""

from __future__ import annotations

import socket

import psycopg2
import pytest
from celery import current_app
from django.db import IntegrityError, ProgrammingError, connection

from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.errors import TransientError, is_unavailable
from runs.enums import BatchStatus, RunStatus
from runs.models import Batch, Run
from runs.services import batch_execute, run_create, run_prepare
from runs.services.claims import db_retrying
from tests.runs.conftest import broker_clear
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def queued():
    """Launches only queue their messages (never eager, whatever an earlier test left set):
    the test drives the services itself."""
    conf = current_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = False
    yield
    broker_clear()
    conf.task_always_eager = saved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _terminate(pid: int) -> None:
    pg.admin_exec(f"SELECT pg_terminate_backend({int(pid)})")


def test_a_terminated_target_connection_is_transient_and_the_next_call_reconnects(
    demo_target_db,
):
    target = PostgresConnector({**pg.admin_params(), "dbname": demo_target_db})
    with target._tx() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    _terminate(pid)  # what a restart or "pg_ctl stop -m fast" does to a session: 57P01
    with pytest.raises(TransientError) as raised:
        target.table_checksum("accounts", ["account_number"])
    assert is_unavailable(raised.value)
    assert target.table_checksum("accounts", ["account_number"]).rows == 0  # reconnected
    target.close()


def test_errors_of_a_database_going_away_are_unavailable_and_others_are_not():
    with pytest.raises(psycopg2.OperationalError) as refused:
        psycopg2.connect(host="127.0.0.1", port=_free_port(), dbname="x", connect_timeout=2)
    assert is_unavailable(refused.value)  # connection refused (no SQLSTATE)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    _terminate(pid)
    with pytest.raises(Exception) as ours, connection.cursor() as cur:
        cur.execute("SELECT 1")
    assert is_unavailable(ours.value), repr(ours.value)  # Django's wrapper of 57P01
    connection.close()
    with pytest.raises(ProgrammingError) as typo, connection.cursor() as cur:
        cur.execute("SELEC 1")
    assert not is_unavailable(typo.value)
    with pytest.raises(IntegrityError) as duplicate, connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE t (k int PRIMARY KEY); INSERT INTO t VALUES (1), (1)")
    assert not is_unavailable(duplicate.value)
    assert not is_unavailable(ValueError("connection refused"))  # not a database's error


def test_db_retrying_waits_out_an_outage_and_gives_up_after_its_limit():
    with pytest.raises(psycopg2.OperationalError) as refused:
        psycopg2.connect(host="127.0.0.1", port=_free_port(), dbname="x", connect_timeout=2)
    calls = []

    def twice_down() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise refused.value
        return "recorded"

    assert db_retrying(twice_down, what="test", within=5) == "recorded"
    assert len(calls) == 3
    with pytest.raises(TransientError, match="test: .*refused"):
        db_retrying(lambda: (_ for _ in ()).throw(refused.value), what="test", within=0.3)
    with pytest.raises(KeyError):  # any other error at once
        db_retrying(lambda: {}["x"], what="test", within=5)


def test_a_batch_whose_target_is_down_goes_back_to_pending_and_is_never_parked(demo_plan, queued):
    run = run_create(plan=demo_plan, user=None, mode="load", scope_entity="accounts")
    run_prepare(run_id=run.pk)
    first = Batch.objects.filter(run=run).order_by("seq").first()
    target = demo_plan.target
    port = target.port
    target.port = _free_port()  # the target is down (a restart: connection refused)
    target.save()
    for attempt in range(1, 6):
        with pytest.raises(TransientError):
            batch_execute(batch_id=first.pk)
        first.refresh_from_db()
        assert (first.status, first.attempts, first.lost_attempts) == ("pending", attempt, 0)
        assert first.error.startswith("transient, retried:"), first.error
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING  # never failed
    target.port = port  # back up: the next retry does the batch
    target.save()
    assert batch_execute(batch_id=first.pk) == "done"
    first.refresh_from_db()
    assert (first.status, first.attempts, first.lost_attempts) == (BatchStatus.DONE, 6, 0)
    assert first.loaded > 0 and first.error == ""


def test_a_run_whose_target_is_down_while_planning_is_queued_again_not_failed(demo_plan, queued):
    run = run_create(plan=demo_plan, user=None, mode="load")
    target = demo_plan.target
    port = target.port
    target.port = _free_port()
    target.save()
    with pytest.raises(TransientError):
        run_prepare(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.lease_until, run.error) == (RunStatus.QUEUED, None, "")
    target.port = port
    target.save()
    run_prepare(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.batches_total > 0
