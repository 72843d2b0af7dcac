"""The error queue while a run is being rolled back: actions on its records are refused at once.

A rollback supersedes the run's failed records in a transaction it keeps open while the target
is undone (``EarlyRecord``: the records stay locked). Ignoring or correcting one of them used
to wait on those locks until the rollback ended (and a correction then re-opened a record of a
rolled-back run as "fixed"). Here a real rollback is held in the middle of its undo, its locks
taken; every queue action (services, API, pages) must answer at once with a refusal naming the
run and the rollback (409 in the API, a message on the page), change nothing, and the queue's
pages must still show. The test's session waits on no lock longer than ``lock_timeout`` (a
wait becomes an error instead of a hung test; no time is asserted).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

import runs.services.rollback as rollback_service
import runs.services.rollback_record as rollback_record
from migration_planner.lib.errors import ConflictError, PermissionDeniedError
from runs.enums import FailedRecordStatus, RollbackStatus, RunStatus
from runs.models import CarriedBatch, FailedRecord, Run
from runs.services import (
    failed_record_correct,
    failed_record_ignore,
    failed_record_reprocess,
    failed_records_reprocess_later,
    run_create,
    run_rollback_execute,
    run_rollback_request,
)
from tests.runs import test_rerun_unchanged as unchanged

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
source_db, target_db, plan = unchanged.source_db, unchanged.target_db, unchanged.plan
_carry_load = unchanged._load


class _HeldRollback:
    """A rollback executed in a thread of its own and held inside its undo, once its early
    transaction has superseded (and so locked) the run's failed records."""

    def __init__(self, monkeypatch, rollback_id: int) -> None:
        self.superseded, self.inside, self.go = (threading.Event() for _ in range(3))
        self.errors: list[BaseException] = []
        real_supersede, real_undo = (
            rollback_record.failed_records_supersede_own,
            rollback_service.rollback_run,
        )

        def supersede(run):
            n = real_supersede(run)
            self.superseded.set()
            return n

        def undo(**kwargs):
            self.inside.set()
            assert self.go.wait(120)
            return real_undo(**kwargs)

        monkeypatch.setattr(rollback_record, "failed_records_supersede_own", supersede)
        monkeypatch.setattr(rollback_service, "rollback_run", undo)
        self.thread = threading.Thread(target=self._execute, args=(rollback_id,))
        self.thread.start()
        assert self.inside.wait(60) and self.superseded.wait(60)

    def _execute(self, rollback_id: int) -> None:
        try:
            run_rollback_execute(rollback_id=rollback_id)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            self.errors.append(exc)
        finally:
            connection.close()

    def release(self) -> None:
        self.go.set()
        self.thread.join(120)
        assert not self.thread.is_alive() and not self.errors, self.errors


@pytest.fixture
def rolling_back(eager_celery, demo_plan, operator, monkeypatch):
    """A load run with failed records (some corrected), its rollback held mid-undo."""
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.failed > 3
    first = FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN).order_by("pk")[0]
    failed_record_correct(record=first, user=None, values={"Email_Address": "a@example.com"})
    rollback = run_rollback_request(run=run, user=operator, enqueue=False)
    held = _HeldRollback(monkeypatch, rollback.pk)
    with connection.cursor() as cursor:  # a wait on the rollback's locks fails, never hangs
        cursor.execute("SET lock_timeout = '10s'")
    before = _statuses(run)
    try:
        yield run, rollback, held
        assert _statuses(run) == before  # nothing changed while the rollback ran
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        held.release()
    rollback.refresh_from_db()
    assert rollback.status == RollbackStatus.VERIFIED
    assert set(FailedRecord.objects.filter(run=run).values_list("status", flat=True)) == {
        FailedRecordStatus.SUPERSEDED
    }


def _statuses(run: Run) -> list[tuple]:
    return list(
        FailedRecord.objects.filter(run=run)
        .order_by("pk")
        .values_list("pk", "status", "corrected_values", "ignore_reason", "handled_at")
    )


def _refusal(run: Run, rollback) -> str:
    return (
        f"Run #{run.pk} is being rolled back by rollback #{rollback.pk}; its failed records "
        "can be worked once it ends."
    )


def test_queue_services_refuse_at_once_while_the_run_is_rolled_back(rolling_back, analyst):
    run, rollback, _held = rolling_back
    records = FailedRecord.objects.filter(run=run)
    first = records.order_by("pk").first()
    actions = [
        lambda: failed_record_ignore(records=records, user=analyst, reason="known"),
        lambda: failed_record_correct(record=first, user=analyst, values={"Email_Address": "x"}),
        lambda: failed_record_reprocess(records=records, user=analyst),
        lambda: failed_records_reprocess_later(records=records, user=analyst),
    ]
    for action in actions:
        with pytest.raises(ConflictError) as refused:
            action()
        assert refused.value.message == _refusal(run, rollback)


def test_queue_api_answers_409_while_the_run_is_rolled_back(rolling_back, client_for, analyst):
    run, rollback, _held = rolling_back
    client = client_for(analyst)
    records = FailedRecord.objects.filter(run=run).order_by("pk")
    uuids = [str(r.uuid) for r in records[:3]]
    answers = [
        client.post(
            "/api/failed-records/ignore/",
            {"ids": uuids, "reason": "known"},
            content_type="application/json",
        ),
        client.post(
            "/api/failed-records/ignore/",
            {"filter": {"run": str(run.uuid)}, "reason": "known"},
            content_type="application/json",
        ),
        client.post(
            "/api/failed-records/reprocess/", {"ids": uuids}, content_type="application/json"
        ),
        client.patch(
            f"/api/failed-records/{uuids[0]}/",
            {"corrected_values": {"Email_Address": "x@example.com"}},
            content_type="application/json",
        ),
    ]
    assert [a.status_code for a in answers] == [409] * 4, [a.content for a in answers]
    assert {a.json()["detail"] for a in answers} == {_refusal(run, rollback)}
    # reading the queue does not wait either
    listed = client.get(f"/api/failed-records/?run={run.uuid}")
    assert listed.status_code == 200 and listed.json()["count"] == run.failed
    assert client.get(f"/api/failed-records/{uuids[0]}/").status_code == 200
    assert client.get(f"/api/failed-records/top/?run={run.uuid}").status_code == 200


def test_queue_pages_say_so_while_the_run_is_rolled_back(rolling_back, client_for, analyst):
    run, rollback, _held = rolling_back
    client = client_for(analyst)
    records = FailedRecord.objects.filter(run=run).order_by("pk")
    ids = [str(r.uuid) for r in records[:3]]
    queue = f"/runs/{run.uuid}/errors/"
    posts = [
        ("/errors/ignore/", {"ids": ids, "reason": "known", "next": queue}),
        ("/errors/ignore/", {"scope": "filter", "run": str(run.uuid), "reason": "known"}),
        ("/errors/reprocess/", {"ids": ids, "next": queue}),
        (f"/errors/{ids[0]}/correct/", {"v:Email_Address": "x@example.com"}),
        (f"/errors/{ids[0]}/correct/", {"v:Email_Address": "y@example.com", "reprocess": "1"}),
    ]
    for url, data in posts:
        page = client.post(url, data, follow=True)
        assert page.status_code == 200, url
        assert _refusal(run, rollback) in page.content.decode(), url
    for url in (queue, "/errors/", f"/errors/{ids[0]}/", f"{queue}top/", f"{queue}export.csv"):
        assert client.get(url).status_code == 200, url


def test_roles_still_decide_before_the_rollback_does(rolling_back, client_for, viewer):
    run, _rollback, _held = rolling_back
    client = client_for(viewer)
    uuid = str(FailedRecord.objects.filter(run=run).first().uuid)
    assert client.post("/errors/ignore/", {"ids": [uuid], "reason": "r"}).status_code == 403
    answer = client.post(
        "/api/failed-records/ignore/",
        {"ids": [uuid], "reason": "r"},
        content_type="application/json",
    )
    assert answer.status_code == 403
    with pytest.raises(PermissionDeniedError, match="Your role does not allow this"):
        failed_record_ignore(records=FailedRecord.objects.filter(pk=0), user=viewer, reason="r")


def test_records_carried_by_reference_are_refused_for_the_run_answering_for_them(
    eager_celery, plan, operator, analyst
):
    """A re-run of an unchanged source carries the earlier run's failures by reference: they
    are the re-run's to work (an action copies them into it first), so its rollback refuses
    them too, nothing copied."""
    first, second = _carry_load(plan), _carry_load(plan)
    assert CarriedBatch.objects.filter(run=second).exists()
    rollback = run_rollback_request(run=second, user=operator, enqueue=False)
    records = FailedRecord.objects.filter(run=first)
    before = list(records.order_by("pk").values_list("pk", "status"))
    with pytest.raises(ConflictError) as refused:
        failed_record_ignore(records=records, user=analyst, reason="known")
    assert refused.value.message == _refusal(second, rollback)
    with pytest.raises(ConflictError):
        failed_record_correct(record=records.first(), user=analyst, values={"Email_Address": "x"})
    assert list(records.order_by("pk").values_list("pk", "status")) == before
    assert not FailedRecord.objects.filter(run=second).exists()


def _chain_refusal(run: Run, rollback) -> str:
    return (
        f"Run #{run.pk} is being rolled back by rollback #{rollback.pk} (of run "
        f"#{rollback.run_id}); its failed records can be worked once it ends."
    )


def test_a_run_in_a_running_rollbacks_chain_refuses_queue_work(
    eager_celery, demo_plan, operator, analyst, client_for, monkeypatch
):
    """A stacked rollback (``chain``) undoes the chained run's later batches with the first
    run's, before the chained run is itself "rolling back": its records were workable while
    they were being undone. Now they are refused as for the run being rolled back, naming the
    rollback and the run it is of; after the chain, the records are superseded."""
    older = run_create(plan=demo_plan, user=None, mode="load")
    newer = run_create(plan=demo_plan, user=None, mode="load", scope_entity="accounts")
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, newer.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
    # the older run's own records (not of the entity the newer run re-ran, so not carried)
    records = FailedRecord.objects.filter(run=older).exclude(entity="accounts")
    assert records.count() > 3
    assert not CarriedBatch.objects.filter(source_batch__in=records.values("batch_id")).exists()
    rollback = run_rollback_request(run=newer, user=operator, chain=[older.pk], enqueue=False)
    held = _HeldRollback(monkeypatch, rollback.pk)
    older.refresh_from_db()
    assert older.status == RunStatus.SUCCEEDED  # not rolling back yet: the chain comes later
    before = _statuses(older)
    try:
        first = records.order_by("pk").first()
        for action in (
            lambda: failed_record_ignore(records=records, user=analyst, reason="known"),
            lambda: failed_record_correct(
                record=first, user=analyst, values={"Email_Address": "x"}
            ),
            lambda: failed_record_reprocess(records=records, user=analyst),
            lambda: failed_records_reprocess_later(records=records, user=analyst),
        ):
            with pytest.raises(ConflictError) as refused:
                action()
            assert refused.value.message == _chain_refusal(older, rollback)
        answer = client_for(analyst).post(
            "/api/failed-records/ignore/",
            {"filter": {"run": str(older.uuid)}, "reason": "known"},
            content_type="application/json",
        )
        assert answer.status_code == 409
        assert answer.json()["detail"] == _chain_refusal(older, rollback)
        assert _statuses(older) == before
    finally:
        held.release()
    older.refresh_from_db()
    assert older.status == RunStatus.ROLLED_BACK
    assert set(records.values_list("status", flat=True)) == {FailedRecordStatus.SUPERSEDED}
