"""A queue action racing a stacked rollback request, with real concurrency.

Two runs of the demo plan; the newer one re-ran ``accounts``, so rolling the older one back is
a stack: the newer run first, the older one chained (``run_rollback_stack_request``). The
request and the queue action (ignore, correct, re-process — services and API) run in two
threads with their own database sessions; the test holds one side's transaction open at the
moment that matters and lets the other run into its lock, seen waiting in ``pg_stat_activity``
(a condition observed, not a time guessed). Either order must end the same way: the action is
refused with the 409 text naming the rollback, or it completes before the rollback takes the
run — and no record of a rolled-back run is ever open or fixed again.

1. the request holds the runs' rows; the action (past its first, unlocked check) waits for
   them: once the request commits, the action is refused (``queue_guard``'s second check).
2. the action holds the rows; the request waits: the action completes, then the rollback.
3. the request *and both rollbacks* commit while the action waits (as a stalled action would
   see them): the action must not reopen a superseded record of the rolled-back run.
4. between the two rollbacks of the stack: the older run's records stay refused (the next
   rollback is requested in the transaction recording the first one's verdict).

The rollback tasks go to the real broker (no worker) while the race runs; the test executes
them after it, in order, as a worker would. Real PostgreSQL and Redis; nothing mocked.
"""
# ruff: noqa: F811 -- fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from celery import current_app
from django.db import connection, transaction
from django.test import Client

from migration_planner.lib.errors import ConflictError
from runs.enums import FailedRecordStatus, RollbackStatus, RunStatus
from runs.models import CarriedBatch, FailedRecord, Rollback, Run
from runs.services import (
    failed_record_correct,
    failed_record_ignore,
    failed_record_reprocess,
    run_create,
    run_rollback_execute,
)
from runs.services.rollback import run_rollback_stack_request
from tests.runs.conftest import broker_clear, eager_celery  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
WORKABLE = {FailedRecordStatus.OPEN, FailedRecordStatus.FIXED}
# inside a transaction the statistics are a snapshot taken at their first read
STATS_NOW = "SELECT pg_stat_clear_snapshot()"


class Side(threading.Thread):
    """``work`` in a thread and database session of its own; ``hold`` (a callable it is
    given) signals ``held`` and waits for ``go`` — called inside the work's transaction, it
    keeps that transaction's locks until the test lets go."""

    def __init__(self, work: Callable[[Callable[[], None]], object]) -> None:
        super().__init__(daemon=True)
        self.work, self.value, self.error = work, None, None
        self.held, self.go, self.connected = threading.Event(), threading.Event(), threading.Event()
        self.pid: int | None = None

    def hold(self) -> None:
        """Signal that the work reached its hold, and wait for the test to let go."""
        self.held.set()
        assert self.go.wait(120), "the test never let go"

    def run(self) -> None:
        try:
            connection.ensure_connection()
            self.pid = connection.connection.info.backend_pid
            self.connected.set()
            self.value = self.work(self.hold)
        except BaseException as exc:  # noqa: BLE001 - the test asserts on it
            self.error = exc
        finally:
            self.held.set()  # a work that failed before its hold does not keep the test waiting
            connection.close()

    def started(self) -> Side:
        """Start, and return once the session is open."""
        self.start()
        assert self.connected.wait(60)
        return self

    def wait_for_lock(self) -> None:
        """Return once the side's session waits on a lock (or the side ended: the caller's
        assertions say which)."""
        for _ in range(2400):  # polls a condition; ~120 s at most, never asserted as time
            with connection.cursor() as cursor:
                cursor.execute(STATS_NOW)
                cursor.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self.pid]
                )
                row = cursor.fetchone()
            if (row and row[0] == "Lock") or not self.is_alive():
                return
            time.sleep(0.05)
        raise AssertionError("the side never waited on a lock")

    def finish(self) -> object:
        """Let go, wait for the end; the work's value (its error raised)."""
        self.go.set()
        self.join(120)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error
        return self.value


@contextmanager
def broker_only() -> Iterator[None]:
    """Tasks sent to the real broker (no worker takes them) instead of run in-process; the
    queue emptied after."""
    conf = current_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = False
    try:
        yield
    finally:
        conf.task_always_eager = saved
        broker_clear()


@pytest.fixture
def stack(eager_celery, demo_plan):
    """An older load run and a newer one of ``accounts`` (it blocks the older one's rollback):
    (older, newer, three open records of the older run, none carried by the newer run)."""
    older = run_create(plan=demo_plan, user=None, mode="load")
    newer = run_create(plan=demo_plan, user=None, mode="load", scope_entity="accounts")
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, newer.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
    records = FailedRecord.objects.filter(run=older, status=FailedRecordStatus.OPEN).exclude(
        entity="accounts"
    )
    ids = list(records.order_by("pk").values_list("pk", flat=True)[:3])
    assert len(ids) == 3
    chosen = FailedRecord.objects.filter(pk__in=ids).values("batch_id")
    assert not CarriedBatch.objects.filter(source_batch__in=chosen).exists()
    return older, newer, ids


def _action(name: str, ids: list[int], user) -> Callable[[], object]:
    """One queue action on the records, as a service call or an API request."""
    records = FailedRecord.objects.filter(pk__in=ids)
    uuids = [str(u) for u in records.order_by("pk").values_list("uuid", flat=True)]
    column = sorted(FailedRecord.objects.get(pk=ids[0]).source_row)[0]

    def api(method: str, url: str, body: dict) -> object:
        client = Client()
        client.force_login(user)
        answer = getattr(client, method)(url, body, content_type="application/json")
        if answer.status_code == 409:
            raise ConflictError(answer.json()["detail"])
        assert answer.status_code == 200, answer.content
        return answer.json()

    def correct() -> object:
        record = FailedRecord.objects.get(pk=ids[0])
        return failed_record_correct(record=record, user=user, values={column: "corrected"})

    return {
        "ignore": lambda: failed_record_ignore(records=records, user=user, reason="known"),
        "correct": correct,
        "reprocess": lambda: failed_record_reprocess(records=records, user=user),
        "api-ignore": lambda: api(
            "post", "/api/failed-records/ignore/", {"ids": uuids, "reason": "known"}
        ),
        "api-correct": lambda: api(
            "patch", f"/api/failed-records/{uuids[0]}/", {"corrected_values": {column: "x"}}
        ),
        "api-reprocess": lambda: api("post", "/api/failed-records/reprocess/", {"ids": uuids}),
    }[name]


def _roll_back_the_stack(newer: Run, older: Run) -> None:
    """What the worker would do with the queued rollbacks: the newer run's, then the older
    one's (requested by the first once it verified), each to its verdict."""
    for run in (newer, older):
        rollback = Rollback.objects.filter(run=run).order_by("-pk").first()
        assert rollback is not None, run
        assert run_rollback_execute(rollback_id=rollback.pk).status == RollbackStatus.VERIFIED


def _no_rolled_back_record_is_open(*runs: Run) -> None:
    for run in runs:
        run.refresh_from_db()
        assert run.status == RunStatus.ROLLED_BACK
        left = FailedRecord.objects.filter(run=run, status__in=WORKABLE)
        assert list(left.values_list("pk", "status")) == [], run


def _chain_refusal(older: Run, newer: Run) -> str:
    head = Rollback.objects.get(run=newer)
    return (
        f"Run #{older.pk} is being rolled back by rollback #{head.pk} (of run #{newer.pk}); "
        "its failed records can be worked once it ends."
    )


ACTIONS = ["ignore", "correct", "reprocess", "api-ignore", "api-correct", "api-reprocess"]


@pytest.mark.parametrize("name", ACTIONS)
def test_an_action_waiting_on_the_stack_requests_lock_is_refused(stack, operator, analyst, name):
    older, newer, ids = stack
    before = list(FailedRecord.objects.filter(pk__in=ids).order_by("pk").values_list("status"))

    def request(hold) -> None:
        with transaction.atomic():
            run_rollback_stack_request(run=older, user=operator)
            hold()  # the runs' rows locked, the request not committed yet

    with broker_only():
        requester = Side(request).started()
        assert requester.held.wait(60) and requester.error is None, requester.error
        actor = Side(lambda _hold: _action(name, ids, analyst)()).started()
        actor.wait_for_lock()
        assert actor.is_alive(), actor.error  # it passed its first check: nothing committed
        requester.finish()
        with pytest.raises(ConflictError) as refused:
            actor.finish()
    assert refused.value.message == _chain_refusal(older, newer)
    after = FailedRecord.objects.filter(pk__in=ids).order_by("pk").values_list("status")
    assert list(after) == before
    _roll_back_the_stack(newer, older)
    _no_rolled_back_record_is_open(older, newer)


@pytest.mark.parametrize("name", ["ignore", "correct", "reprocess"])
def test_an_action_holding_the_runs_completes_before_the_stack_rollback(
    stack, operator, analyst, name
):
    older, newer, ids = stack

    def act(hold) -> object:
        with transaction.atomic():
            done = _action(name, ids, analyst)()
            hold()  # the action's locks held, its writes not committed yet
        return done

    with broker_only():
        actor = Side(act).started()
        assert actor.held.wait(120) and actor.error is None, actor.error
        requester = Side(
            lambda _hold: run_rollback_stack_request(run=older, user=operator)
        ).started()
        requester.wait_for_lock()
        assert requester.is_alive(), requester.error
        actor.finish()
        requester.finish()
    done = FailedRecord.objects.filter(pk__in=ids).order_by("pk")
    statuses = list(done.values_list("status", flat=True))
    if name == "ignore":
        assert statuses == [FailedRecordStatus.IGNORED] * 3
    elif name == "correct":
        assert statuses == [FailedRecordStatus.FIXED] + [FailedRecordStatus.OPEN] * 2
    else:  # re-processed, each passing now or failing again
        assert set(statuses) <= {FailedRecordStatus.REPROCESSED, FailedRecordStatus.OPEN}
        assert all(h is not None for h in done.values_list("handled_at", flat=True))
    _roll_back_the_stack(newer, older)
    _no_rolled_back_record_is_open(older, newer)


@pytest.mark.parametrize("name", ["ignore", "correct", "reprocess", "api-correct"])
def test_an_action_that_waited_out_the_whole_stack_rollback_reopens_nothing(
    stack, operator, analyst, name
):
    """The request and both rollbacks commit in one transaction while the action waits for
    the runs' rows (as an action stalled between its check and its lock would find them):
    the action finds the runs rolled back and their records superseded; it changes none."""
    older, newer, ids = stack

    def request_and_roll_back(hold) -> None:
        with transaction.atomic():
            run_rollback_stack_request(run=older, user=operator)
            _roll_back_the_stack(newer, older)  # sequential record: inside this transaction
            hold()

    with broker_only():
        requester = Side(request_and_roll_back).started()
        assert requester.held.wait(120) and requester.error is None, requester.error
        actor = Side(lambda _hold: _action(name, ids, analyst)()).started()
        actor.wait_for_lock()
        assert actor.is_alive(), actor.error
        requester.finish()
        try:
            actor.finish()
        except ConflictError as refused:
            assert f"Run #{older.pk} was rolled back" in refused.message
    _no_rolled_back_record_is_open(older, newer)


def test_the_record_page_refuses_to_correct_a_record_of_a_rolled_back_run(
    eager_celery, demo_plan, operator, analyst, client_for
):
    run = run_create(plan=demo_plan, user=None, mode="load")
    record = FailedRecord.objects.filter(run=run).order_by("pk").first()
    rollback = run_rollback_stack_request(run=run, user=operator)  # eager: done at once
    rollback.refresh_from_db()
    assert rollback.status == RollbackStatus.VERIFIED
    record.refresh_from_db()
    assert record.status == FailedRecordStatus.SUPERSEDED
    column = sorted(record.source_row)[0]

    page = client_for(analyst).post(
        f"/errors/{record.uuid}/correct/", {f"v:{column}": "corrected"}, follow=True
    )

    assert page.status_code == 200
    assert f"Run #{run.pk} was rolled back; its failed records are superseded" in (
        page.content.decode()
    )
    record.refresh_from_db()
    assert (record.status, record.corrected_values) == (FailedRecordStatus.SUPERSEDED, {})


def test_no_moment_between_two_rollbacks_of_a_stack_leaves_the_next_run_workable(
    stack, operator, analyst
):
    """The newer run's rollback verifies and the older run's is requested in one transaction:
    the test holds the older run's row (FOR SHARE) so the rollback waits right at that
    request; what is committed meanwhile still refuses the older run's records (the newer
    run's rollback still running, the older run in its chain) — never a moment with the first
    verified and the next not yet requested, when they could be worked."""
    older, newer, ids = stack
    with broker_only():
        run_rollback_stack_request(run=older, user=operator)
        head = Rollback.objects.get(run=newer)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM runs_run WHERE id = %s FOR SHARE", [older.pk])
                cursor.execute("SELECT pg_backend_pid()")
                (mine,) = cursor.fetchone()
            executor = Side(lambda _hold: run_rollback_execute(rollback_id=head.pk)).started()
            _wait_for_a_session_blocked_by(mine, executor)
            with pytest.raises(ConflictError) as refused:
                failed_record_ignore(
                    records=FailedRecord.objects.filter(pk__in=ids), user=analyst, reason="known"
                )
        assert refused.value.message == _chain_refusal(older, newer)
        assert executor.finish().status == RollbackStatus.VERIFIED
    _roll_back_the_stack(newer, older)
    _no_rolled_back_record_is_open(older, newer)


def _wait_for_a_session_blocked_by(pid: int, side: Side) -> None:
    """Return once a session waits on a lock ``pid`` holds (or ``side`` ended)."""
    for _ in range(2400):  # polls a condition; ~120 s at most, never asserted as time
        with connection.cursor() as cursor:
            cursor.execute(STATS_NOW)
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                [pid],
            )
            if cursor.fetchone()[0] or not side.is_alive():
                return
        time.sleep(0.05)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid), "
            "left(query, 120) FROM pg_stat_activity WHERE datname = current_database()"
        )
        sessions = cursor.fetchall()
    raise AssertionError(f"no session ever waited on the test's lock: {sessions}")
