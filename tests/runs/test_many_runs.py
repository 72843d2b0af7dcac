"""Many runs, one target (issue 15): rollbacks in stack order, one writer per target table,
the error queue following its run, re-runs writing only what changed. Real PostgreSQL
source and target, eager Celery where a run has to finish in-process."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from runs.connections import connector_for
from runs.enums import RollbackStatus, RunStatus
from runs.models import FailedRecord, Rollback, Run, TableLease
from runs.services import (
    RollbackOrderError,
    TableBusy,
    failed_record_reprocess,
    hooks,
    run_create,
    run_rollback_request,
    run_rollback_stack_request,
    table_lease_release_expired,
)
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
TABLES = ("accounts", "contacts", "orders")


def _checksums(plan) -> dict:
    target = connector_for(plan.target)
    return {t: target.table_checksum(t, ["id"]) for t in TABLES}


def _load(plan, user=None, mode="load", **kwargs) -> Run:
    run = run_create(plan=plan, user=user, mode=mode, **kwargs)
    run.refresh_from_db()
    return run


def _two_runs_over_the_same_rows(plan, target_db, analyst):
    """Run D loads; a hand edit; run E (same plan) rewrites the edited rows."""
    first = _load(plan, analyst)
    pg.query(target_db, "UPDATE accounts SET name = 'Changed by hand' WHERE id % 5 = 0")
    second = _load(plan, analyst)
    assert (first.status, second.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
    assert second.updated > 0
    return first, second


# --------------------------------------------------------------------------- 1 rollback order


def test_rollback_of_an_older_run_is_refused_while_a_later_run_wrote_its_tables(
    eager_celery, demo_plan, demo_target_db, analyst, operator
):
    first, second = _two_runs_over_the_same_rows(demo_plan, demo_target_db, analyst)
    before = _checksums(demo_plan)
    with pytest.raises(RollbackOrderError) as refused:
        run_rollback_request(run=first, user=operator)
    message = refused.value.message
    assert f"Run #{first.pk} cannot be rolled back yet" in message
    assert f"run #{second.pk} (load, succeeded) by ana at " in message
    assert f"{second.inserted + second.updated:,} rows written" in message
    assert refused.value.extra["later_runs"][0]["run"] == second.pk
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED
    assert not Rollback.objects.exists()
    assert _checksums(demo_plan) == before


def test_later_runs_are_listed_newest_first(eager_celery, demo_plan, analyst, operator):
    runs = [_load(demo_plan, analyst, scope_entity="accounts") for _ in range(3)]
    with pytest.raises(RollbackOrderError) as refused:
        run_rollback_request(run=runs[0], user=operator)
    assert [r["run"] for r in refused.value.extra["later_runs"]] == [runs[2].pk, runs[1].pk]


def _refuse(run):
    return "blocking pre-validation failed"


def test_later_dry_runs_and_runs_that_never_started_do_not_block(eager_celery, demo_plan, operator):
    older = _load(demo_plan, scope_entity="accounts")
    _load(demo_plan, mode="dry_run")
    hooks.register_before_run(_refuse)
    try:
        never = _load(demo_plan)  # stopped by pre-validation before any batch
    finally:
        hooks.BEFORE_RUN.remove(_refuse)
    assert never.status == RunStatus.FAILED
    rollback = run_rollback_request(run=older, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == RollbackStatus.VERIFIED


def test_rollback_stack_undoes_later_runs_newest_first_each_verified(
    eager_celery, demo_plan, demo_target_db, analyst, operator
):
    pristine = _checksums(demo_plan)
    first, second = _two_runs_over_the_same_rows(demo_plan, demo_target_db, analyst)
    run_rollback_stack_request(run=first, user=operator)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (RunStatus.ROLLED_BACK, RunStatus.ROLLED_BACK)
    order = list(Rollback.objects.order_by("started_at", "pk").values_list("run_id", "status"))
    assert order == [(second.pk, "verified"), (first.pk, "verified")]
    assert _checksums(demo_plan) == pristine


def test_rollback_stack_stops_at_the_first_mismatch(
    eager_celery, demo_plan, demo_target_db, analyst, operator
):
    first, second = _two_runs_over_the_same_rows(demo_plan, demo_target_db, analyst)
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Edited after' WHERE id % 7 = 0")
    run_rollback_stack_request(run=first, user=operator)
    first.refresh_from_db()
    second.refresh_from_db()
    assert Rollback.objects.get(run=second).status == RollbackStatus.MISMATCH
    assert (first.status, Rollback.objects.filter(run=first).count()) == (RunStatus.SUCCEEDED, 0)
    assert first.logs.filter(message__contains="Chained rollback stopped").exists() or (
        second.logs.filter(message__contains="Chained rollback stopped").exists()
    )


def test_api_and_cli_refuse_the_out_of_order_rollback(
    eager_celery, demo_plan, demo_target_db, analyst, operator, client_for
):
    first, second = _two_runs_over_the_same_rows(demo_plan, demo_target_db, analyst)
    client = client_for(operator)
    response = client.post(
        f"/api/runs/{first.uuid}/rollback/", {"reason": "undo"}, content_type="application/json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["detail"].startswith(f"Run #{first.pk} cannot be rolled back yet")
    assert [r["run"] for r in body["later_runs"]] == [second.pk]
    with pytest.raises(CommandError, match=f"run #{second.pk}"):
        call_command("rollback_run", str(first.uuid), "--inline")
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED
    response = client.post(
        f"/api/runs/{first.uuid}/rollback/",
        {"reason": "undo", "with_later_runs": True},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    first.refresh_from_db()
    assert first.status == RunStatus.ROLLED_BACK


def test_rollback_page_lists_later_runs_and_offers_rolling_them_all_back(
    eager_celery, demo_plan, demo_target_db, analyst, operator, client_for
):
    first, second = _two_runs_over_the_same_rows(demo_plan, demo_target_db, analyst)
    client = client_for(operator)
    url = reverse("runs:rollback", args=[first.uuid])
    page = client.get(url).content.decode()
    assert f"run #{second.pk}" in page and "Roll back all 2 runs, newest first" in page
    when = (second.started_at or second.created_at).astimezone(timezone.get_current_timezone())
    assert f"{when:%Y-%m-%d %H:%M}" in page and " p.m." not in page  # REVIEW9 J2-4
    refused = client.post(url, {"reason": "undo", "confirm": "on"})
    assert refused.status_code == 409
    assert f"Run #{first.pk} cannot be rolled back yet" in refused.content.decode()
    response = client.post(url, {"reason": "undo", "confirm": "on", "with_later_runs": "on"})
    assert response.status_code == 302
    assert set(Run.objects.values_list("status", flat=True)) == {RunStatus.ROLLED_BACK}


# --------------------------------------------------------------------------- 2 one writer


def test_second_load_into_the_same_tables_is_refused_while_the_first_holds_them(
    demo_plan, demo_target_db, analyst
):
    before = _checksums(demo_plan)
    first = run_create(plan=demo_plan, user=analyst, mode="load")  # no worker: stays queued
    started = timezone.localtime(TableLease.objects.get(table="accounts").acquired_at)
    with pytest.raises(TableBusy) as refused:
        run_create(plan=demo_plan, user=analyst, mode="load", scope_entity="accounts")
    assert refused.value.message == (
        f"accounts is being written by run #{first.pk} (load), started {started:%H:%M} by ana"
    )
    assert Run.objects.count() == 1
    dry = run_create(plan=demo_plan, user=analyst, mode="dry_run")  # dry runs need no lease
    assert dry.status == RunStatus.QUEUED
    assert _checksums(demo_plan) == before


def test_api_refuses_the_second_writer_with_409_and_the_holder(demo_plan, analyst, client_for):
    first = run_create(plan=demo_plan, user=analyst, mode="load")
    response = client_for(analyst).post(
        "/api/runs/", {"plan": demo_plan.slug, "mode": "delta"}, content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"accounts is being written by run #{first.pk}")
    assert response.json()["run"] == first.pk


def test_launch_and_run_pages_show_who_writes_the_tables(demo_plan, analyst, client_for):
    first = run_create(plan=demo_plan, user=analyst, mode="load")
    client = client_for(analyst)
    text = f"accounts is being written by run #{first.pk} (load)"
    launch = client.get(reverse("runs:launch", args=[demo_plan.slug])).content.decode()
    assert text in launch
    assert text in client.get(first.get_absolute_url()).content.decode()


def test_leases_are_released_when_the_run_ends(eager_celery, demo_plan, operator):
    run = _load(demo_plan)
    assert run.status == RunStatus.SUCCEEDED
    assert not TableLease.objects.exists()
    run_rollback_request(run=run, user=operator)
    assert not TableLease.objects.exists()


def test_a_lease_left_by_a_dead_run_is_recovered(demo_plan, analyst):
    first = run_create(plan=demo_plan, user=analyst, mode="load")
    # The run died and was ended by the supervisor without freeing its leases.
    Run.objects.filter(pk=first.pk).update(status=RunStatus.FAILED)
    assert TableLease.objects.filter(run=first).count() == 3
    assert table_lease_release_expired() == 3
    assert first.logs.filter(message__contains="released").count() == 3
    second = run_create(plan=demo_plan, user=analyst, mode="load")
    assert TableLease.objects.filter(run=second).count() == 3
    # An expiring lease (re-process, rollback) whose holder stopped renewing it.
    TableLease.objects.filter(run=second).update(purpose="reprocess", expires_at=timezone.now())
    assert table_lease_release_expired() == 3


def test_the_supervisor_pass_recovers_leases_of_dead_runs(demo_plan, analyst):
    from runs.services import runs_supervise

    first = run_create(plan=demo_plan, user=analyst, mode="load")
    Run.objects.filter(pk=first.pk).update(status=RunStatus.CANCELLED)  # ended, never released
    assert runs_supervise()["table_leases_released"] == 3
    assert not TableLease.objects.exists()


# --------------------------------------------------------------------------- 3 the queue


def test_records_of_a_rolled_back_run_are_superseded_and_never_reprocessable(
    eager_celery, demo_plan, operator
):
    runs = []
    for _ in range(3):
        if runs:
            run_rollback_request(run=runs[-1], user=operator)
        runs.append(_load(demo_plan))
    per_run = FailedRecord.objects.filter(run=runs[-1]).count()
    assert FailedRecord.objects.filter(status__in=["open", "fixed"]).count() == per_run
    assert FailedRecord.objects.filter(status="superseded").count() == 2 * per_run
    old = FailedRecord.objects.filter(run=runs[0])
    with pytest.raises(Exception, match="No open failed records match"):
        failed_record_reprocess(records=old, user=None)
    record = old.first()
    FailedRecord.objects.filter(pk=record.pk).update(status="open")  # a legacy open record
    with pytest.raises(Exception, match=f"Run #{runs[0].pk} was rolled back"):
        failed_record_reprocess(records=FailedRecord.objects.filter(pk=record.pk), user=None)


def test_reprocess_is_refused_while_its_run_is_rolling_back(demo_plan, analyst):
    run = run_create(plan=demo_plan, user=analyst, mode="load")  # no worker: stays queued
    Run.objects.filter(pk=run.pk).update(status=RunStatus.ROLLING_BACK)
    FailedRecord.objects.create(
        run=run, entity="accounts", source_key="1", stage="transform", category="c", message="m"
    )
    with pytest.raises(Exception, match=f"Run #{run.pk} is being rolled back;"):
        failed_record_reprocess(records=FailedRecord.objects.filter(run=run), user=None)


# --------------------------------------------------------------------------- 5 re-runs


def test_an_identical_reload_writes_nothing_and_counts_unchanged(
    eager_celery, demo_plan, demo_target_db
):
    first = _load(demo_plan)
    after_first = _checksums(demo_plan)
    second = _load(demo_plan)
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert (second.inserted, second.updated) == (0, 0)
    assert second.unchanged == second.loaded == first.loaded
    assert pg.query(
        demo_target_db,
        "SELECT count(*) FROM mp_ledger.written WHERE run_id = %s",
        (str(second.uuid),),
    ) == [(0,)]
    assert _checksums(demo_plan) == after_first


def test_a_run_failing_its_threshold_keeps_its_lease_until_its_last_running_batch_ends(
    demo_plan, analyst
):
    from runs.models import Batch
    from runs.services.batches import _claim, batch_execute, batch_work_claimed
    from runs.services.execution import run_prepare

    demo_plan.failure_threshold_pct, demo_plan.batch_size = 0, 100  # any failure fails the run
    demo_plan.save()
    run = run_create(plan=demo_plan, user=analyst, mode="load", scope_entity="accounts")
    run_prepare(run_id=run.pk)  # batches planned and queued; no worker consumes them
    first, second, *rest = Batch.objects.filter(run=run).order_by("seq")
    in_flight = _claim(first.pk)  # a worker is still writing batch 1
    assert batch_execute(batch_id=second.pk) == "done"  # batch 2 passes the threshold
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Failure threshold passed" in run.error
    assert {b.status for b in Batch.objects.filter(pk__in=[b.pk for b in rest])} == {"cancelled"}
    # batch 1 may still write accounts: the lease stays, nobody else may write the table
    assert list(TableLease.objects.filter(run=run).values_list("table", flat=True)) == ["accounts"]
    assert table_lease_release_expired() == 0
    with pytest.raises(TableBusy, match=f"accounts is being written by run #{run.pk}"):
        run_create(plan=demo_plan, user=analyst, mode="load", scope_entity="accounts")
    assert batch_work_claimed(batch=in_flight) == "done"  # batch 1 ends: the lease goes with it
    assert not TableLease.objects.filter(run=run).exists()
    assert run_create(plan=demo_plan, user=analyst, mode="load", scope_entity="accounts")


def test_a_failed_runs_lease_is_recovered_when_its_running_batchs_worker_died(demo_plan, analyst):
    from runs.models import Batch
    from runs.services.batches import _claim, batch_execute
    from runs.services.execution import run_prepare

    demo_plan.failure_threshold_pct, demo_plan.batch_size = 0, 100
    demo_plan.save()
    run = run_create(plan=demo_plan, user=analyst, mode="load", scope_entity="accounts")
    run_prepare(run_id=run.pk)
    first, second, *_ = Batch.objects.filter(run=run).order_by("seq")
    _claim(first.pk)
    batch_execute(batch_id=second.pk)
    assert TableLease.objects.filter(run=run).count() == 1
    Batch.objects.filter(pk=first.pk).update(lease_until=timezone.now())  # its worker died
    assert table_lease_release_expired() == 1


def test_runs_whose_batches_interleave_roll_back_in_commit_order(
    demo_plan, demo_target_db, analyst, operator
):
    from celery import current_app

    from runs.models import Batch
    from runs.services.batches import batch_execute
    from runs.services.execution import run_prepare

    demo_plan.batch_size = 100
    demo_plan.save()
    pristine = _checksums(demo_plan)

    def start(run):
        run_prepare(run_id=run.pk)  # batches planned and queued; no worker consumes them
        return list(Batch.objects.filter(run=run).order_by("seq"))

    older = run_create(plan=demo_plan, user=analyst, mode="load", scope_entity="accounts")
    older_batches = start(older)
    assert batch_execute(batch_id=older_batches[0].pk) == "done"  # A1
    TableLease.objects.filter(run=older).delete()  # its lease was lost (taken over as stale)
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Changed by hand'")
    newer = run_create(plan=demo_plan, user=analyst, mode="load", scope_entity="accounts")
    newer_batches = start(newer)
    assert batch_execute(batch_id=newer_batches[0].pk) == "done"  # B1 rewrites A1's rows
    for batch in older_batches[1:]:  # A2, A3, ... commit after B1
        assert batch_execute(batch_id=batch.pk) == "done"
    for batch in newer_batches[1:]:
        assert batch_execute(batch_id=batch.pk) == "done"
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, newer.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
    assert newer.updated > 0 and older.inserted > 0
    # created first is not undone last: each run wrote after the other started writing
    with pytest.raises(RollbackOrderError) as refused:
        run_rollback_request(run=newer, user=operator)
    assert [r["run"] for r in refused.value.extra["later_runs"]] == [older.pk]
    with pytest.raises(RollbackOrderError) as refused:
        run_rollback_request(run=older, user=operator)
    assert [r["run"] for r in refused.value.extra["later_runs"]] == [newer.pk]
    # the stack undoes every batch in reverse commit order: A3, A2, B1 (B verified), then A1
    conf = current_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True  # the rollbacks run in-process
    try:
        run_rollback_stack_request(run=older, user=operator)
    finally:
        conf.task_always_eager, conf.task_eager_propagates = saved
    order = list(Rollback.objects.order_by("started_at", "pk").values_list("run_id", "status"))
    assert order == [(newer.pk, "verified"), (older.pk, "verified")]
    assert _checksums(demo_plan) == pristine
    assert older.logs.filter(message__contains=f"undone by the rollback of run #{newer.pk}")
