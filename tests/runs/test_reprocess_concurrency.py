"""Re-processing against real PostgreSQL while other requests and rollbacks run (issue 15,
findings 3 and 5): real threads, each with its own database session and client."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

import runs.engine.batch as engine_batch
from runs.connections import connector_for
from runs.enums import BatchStatus, RollbackStatus, RunStatus
from runs.models import Batch, FailedRecord, LedgerEntry, Run, TableLease
from runs.services import (
    failed_record_correct,
    failed_record_reprocess,
    run_create,
    run_rollback_request,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
TABLES = ("accounts", "contacts", "orders")


def _checksums(plan) -> dict:
    target = connector_for(plan.target)
    return {t: target.table_checksum(t, ["id"]) for t in TABLES}


def _fixable(run, n: int) -> list[FailedRecord]:
    """``n`` accounts records failing only on the e-mail, corrected."""
    records = [
        r
        for r in FailedRecord.objects.filter(run=run, entity="accounts", field="email")
        if len(r.errors) == 1
    ][:n]
    assert len(records) == n
    for r in records:
        failed_record_correct(
            record=r, user=None, values={"Email_Address": f"fixed{r.source_key}@example.com"}
        )
    return records


class _Gate:
    """Holds every process_frame call until ``go`` is set (so two requests overlap for sure)."""

    def __init__(self, monkeypatch) -> None:
        self.inside, self.go = threading.Event(), threading.Event()
        real = engine_batch.process_frame

        def gated(**kwargs):
            self.inside.set()
            assert self.go.wait(60)
            return real(**kwargs)

        monkeypatch.setattr(engine_batch, "process_frame", gated)


def _in_thread(fn, results: list, *args) -> threading.Thread:
    def body() -> None:
        try:
            results.append(fn(*args))
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_rollback_waits_for_the_runs_reprocess_and_undoes_it(
    eager_celery, demo_plan, operator, monkeypatch
):
    before = _checksums(demo_plan)
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    loaded = run.loaded
    records = _fixable(run, 3)
    gate = _Gate(monkeypatch)
    results: list = []
    ids = [r.pk for r in records]
    worker = _in_thread(
        lambda: failed_record_reprocess(records=FailedRecord.objects.filter(pk__in=ids), user=None),
        results,
    )
    assert gate.inside.wait(30)
    assert TableLease.objects.filter(run=run, purpose="reprocess").exists()
    threading.Timer(1.0, gate.go.set).start()  # the re-process finishes while rollback waits
    rollback = run_rollback_request(run=run, user=operator)  # eager: executes here, waiting
    worker.join(30)
    assert results[0].fixed == 3
    rollback.refresh_from_db()
    run.refresh_from_db()
    assert (rollback.status, run.status) == (RollbackStatus.VERIFIED, RunStatus.ROLLED_BACK)
    assert _checksums(demo_plan) == before
    assert run.loaded == loaded + 3  # the re-process counted once, on the run it belongs to
    assert set(FailedRecord.objects.filter(run=run).values_list("status", flat=True)) == {
        "superseded"
    }
    redo = Batch.objects.get(run=run, worker="reprocess")
    assert redo.status == BatchStatus.ROLLED_BACK
    assert LedgerEntry.objects.get(batch=redo).rolled_back_at is not None
    assert not TableLease.objects.exists()


def test_concurrent_reprocess_requests_on_the_same_records_get_409_not_500(
    eager_celery, demo_plan, analyst, monkeypatch
):
    run = run_create(plan=demo_plan, user=None, mode="load")
    records = _fixable(run, 4)
    ids, uuids = [r.pk for r in records], [str(r.uuid) for r in records]
    gate = _Gate(monkeypatch)
    results: list = []

    def post():
        client = Client()
        client.force_login(analyst)
        return client.post(
            "/api/failed-records/reprocess/", {"ids": uuids}, content_type="application/json"
        )

    first = _in_thread(post, results)
    assert gate.inside.wait(30)
    second = _in_thread(post, results)
    second.join(30)
    gate.go.set()
    first.join(30)
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.content for r in results]
    refused = next(r for r in results if r.status_code == 409).json()
    assert refused["detail"].startswith(f"accounts is being written by run #{run.pk} (re-process)")
    assert not Batch.objects.filter(status=BatchStatus.RUNNING).exists()
    assert FailedRecord.objects.filter(pk__in=ids, status="reprocessed").count() == 4
    assert not TableLease.objects.exists()


def test_simultaneous_reprocess_requests_never_fail_or_leave_a_batch_running(
    eager_celery, demo_plan, analyst
):
    run = run_create(plan=demo_plan, user=None, mode="load")
    records = _fixable(run, 4)
    ids, uuids = [r.pk for r in records], [str(r.uuid) for r in records]
    barrier = threading.Barrier(3)
    results: list = []

    def post(chunk):
        client = Client()
        client.force_login(analyst)
        barrier.wait(10)
        return client.post(
            "/api/failed-records/reprocess/", {"ids": chunk}, content_type="application/json"
        )

    threads = [_in_thread(post, results, uuids[i::2] + uuids[:1]) for i in range(3)]
    for thread in threads:
        thread.join(60)
    assert len(results) == 3
    assert {r.status_code for r in results} <= {200, 400, 409}, [r.content for r in results]
    assert 200 in {r.status_code for r in results}
    assert not Batch.objects.filter(status=BatchStatus.RUNNING).exists()
    seqs = list(Batch.objects.filter(run=run).values_list("seq", flat=True))
    assert len(seqs) == len(set(seqs))
    run.refresh_from_db()
    fixed = FailedRecord.objects.filter(pk__in=ids, status="reprocessed").count()
    assert run.loaded + run.failed + run.filtered + run.duplicates == run.extracted
    assert fixed == sum(r.json()["fixed"] for r in results if r.status_code == 200)
    assert not TableLease.objects.exists()
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_each_thread_gets_its_own_target_connection(demo_plan):
    mine = connector_for(demo_plan.target)
    assert connector_for(demo_plan.target) is mine
    theirs: list = []
    thread = _in_thread(lambda: connector_for(demo_plan.target), theirs)
    thread.join(10)
    assert theirs[0] is not mine
