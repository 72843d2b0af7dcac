"""The supervisor's pass, in-process on the real database and broker: lost start messages,
expired leases, late originals, cancel with a lost worker, stall alerts; and the run alerts'
e-mails (one-line subjects, absolute links, a failed reconciliation never called finished)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.conf import settings
from django.utils import timezone

from runs.engine.batch import BatchOutcome
from runs.enums import BatchStatus, RunMode, RunStatus
from runs.models import Batch, Notification, Rollback, Run
from runs.notifications import notify_after_run
from runs.services import (
    SyncBusy,
    run_cancel,
    run_create,
    run_prepare,
    run_rollback_execute,
    run_rollback_request,
)
from runs.services.batches import _claim
from runs.services.broker import broker_view
from runs.services.recording import outcome_record
from runs.services.rollback import _rollback_claim
from runs.services.supervise import runs_supervise
from runs.services.sync_lease import sync_claim
from tests.runs.conftest import broker_clear

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def broker():
    """Messages really go to Redis (never eager, whatever an earlier test left set)."""
    conf = current_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = False
    broker_clear()
    yield
    broker_clear()
    conf.task_always_eager = saved


@pytest.fixture
def prepared(demo_plan, broker, analyst):
    """A load run planned in-process (as a worker would), its first entity's batches queued."""
    demo_plan.batch_size = 100
    demo_plan.save()
    analyst.email = "ana@example.com"
    analyst.save()
    run = run_create(plan=demo_plan, user=analyst, mode="load")
    run_prepare(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.lease_until is None
    return run


def _expire(batch: Batch) -> None:
    Batch.objects.filter(pk=batch.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


def test_supervisor_resends_the_start_of_a_run_whose_message_was_lost(demo_plan, broker, settings):
    settings.MP_SUPERVISOR_SECONDS = 0
    run = run_create(plan=demo_plan, user=None, mode="load")
    assert broker_view().holds("runs.run_start", run.pk)
    broker_clear()  # the broker lost it (SHUTDOWN NOSAVE)
    assert not broker_view().holds("runs.run_start", run.pk)
    assert runs_supervise() == {"runs_started": 1}
    assert broker_view().holds("runs.run_start", run.pk)
    assert runs_supervise() == {}  # the message is there now: nothing more to do


def test_expired_lease_is_requeued_and_the_late_original_cannot_record(prepared, settings):
    settings.MP_SUPERVISOR_SECONDS = 0
    first = Batch.objects.filter(run=prepared).order_by("seq").first()
    original = _claim(first.pk)
    assert original.attempts == 1
    _expire(original)
    report = runs_supervise()
    assert report["leases_expired"] == 1
    first.refresh_from_db()
    assert (first.status, first.lease_until) == (BatchStatus.PENDING, None)
    assert broker_view().holds("runs.batch_execute", first.pk)
    again = _claim(first.pk)
    assert again.attempts == 2
    outcome = BatchOutcome(extracted=100, loaded=100, inserted=100)
    entity = prepared.plan.entities.get(name=first.entity)
    assert outcome_record(batch=original, outcome=outcome, entity=entity, duration_ms=1) is False
    assert outcome_record(batch=again, outcome=outcome, entity=entity, duration_ms=1) is True
    prepared.refresh_from_db()
    assert prepared.loaded == 100  # counted once


def test_supervisor_requeues_pending_batches_whose_messages_were_lost(prepared, settings):
    settings.MP_SUPERVISOR_SECONDS = 0
    batches = Batch.objects.filter(run=prepared, entity="accounts")
    pending = set(batches.values_list("pk", flat=True))
    assert all(broker_view().holds("runs.batch_execute", pk) for pk in pending)
    broker_clear()
    assert runs_supervise() == {"messages_requeued": len(pending)}
    assert all(broker_view().holds("runs.batch_execute", pk) for pk in pending)


def test_cancel_ends_at_once_when_the_running_batch_lost_its_worker(prepared):
    batch = _claim(Batch.objects.filter(run=prepared).order_by("seq").first().pk)
    _expire(batch)
    run_cancel(run=prepared, user=None)
    prepared.refresh_from_db()
    assert prepared.status == RunStatus.CANCELLED
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.CANCELLED
    run_rollback_request(run=prepared, user=None)
    assert Run.objects.get(pk=prepared.pk).status == RunStatus.ROLLING_BACK


def test_cancelling_run_ends_when_the_lease_expires_later(prepared):
    batch = _claim(Batch.objects.filter(run=prepared).order_by("seq").first().pk)
    run_cancel(run=prepared, user=None)
    assert Run.objects.get(pk=prepared.pk).status == RunStatus.CANCELLING  # the lease is alive
    _expire(batch)
    assert runs_supervise()["batches_cancelled"] == 1
    assert Run.objects.get(pk=prepared.pk).status == RunStatus.CANCELLED


def test_stalled_run_alerts_once_with_a_one_line_subject_and_an_absolute_link(
    prepared, analyst, settings, mailoutbox, client_for
):
    settings.MP_STALL_ALERT_SECONDS = 60
    settings.MP_BASE_URL = "https://planner.example.org"
    Run.objects.filter(pk=prepared.pk).update(started_at=timezone.now() - timedelta(minutes=10))
    assert runs_supervise().get("stall_alerts") == 1
    assert runs_supervise().get("stall_alerts") is None  # once per stall
    note = Notification.objects.get(user=analyst)
    assert note.level == "error" and "no worker has taken a batch for" in note.message
    (mail,) = mailoutbox
    assert "\n" not in mail.subject and "stalled" in mail.subject
    assert f"https://planner.example.org/runs/{prepared.uuid}/" in mail.body
    page = client_for(analyst).get(prepared.get_absolute_url()).content.decode()
    assert "No worker has taken a batch for" in page
    assert "none has ever reported" in page


def test_failure_with_a_multiline_error_is_mailed_on_one_subject_line(
    prepared, analyst, mailoutbox
):
    Run.objects.filter(pk=prepared.pk).update(
        status=RunStatus.FAILED, error="Batch 3 failed:\nline two\r\nline three"
    )
    assert notify_after_run(prepared) == 1
    (mail,) = mailoutbox
    assert mail.subject.startswith("[Migration Planner] ") and "\n" not in mail.subject
    assert "Batch 3 failed: line two line three" in mail.subject


def test_failed_reconciliation_is_not_announced_as_finished(prepared, analyst, mailoutbox):
    from validation.models import RunReport

    Run.objects.filter(pk=prepared.pk).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now()
    )
    RunReport.objects.create(run=prepared, verdict="fail", data={})
    notify_after_run(prepared)
    note = Notification.objects.get(user=analyst)
    assert note.level == "error"
    assert "reconciliation FAILED" in note.message and "finished" not in note.message
    assert "reconciliation FAILED" in mailoutbox[0].subject


def test_rollback_whose_worker_died_is_queued_again_and_resumes_once(prepared, settings):
    settings.MP_SUPERVISOR_SECONDS = 0
    Run.objects.filter(pk=prepared.pk).update(status=RunStatus.FAILED, finished_at=timezone.now())
    rollback = run_rollback_request(run=prepared, user=None)
    assert broker_view().holds("runs.run_rollback", rollback.pk)
    original = _rollback_claim(rollback)  # a worker takes it ...
    assert original is not None and rollback.attempts == 1
    assert _rollback_claim(Rollback.objects.get(pk=rollback.pk)) is None  # a live claim
    assert run_rollback_execute(rollback_id=rollback.pk).status == "running"  # duplicate: no-op
    assert "rollbacks_requeued" not in runs_supervise()  # ... and renews its lease
    broker_clear()
    Rollback.objects.filter(pk=rollback.pk).update(lease_until=timezone.now() - timedelta(1))
    assert runs_supervise()["rollbacks_requeued"] == 1  # ... and dies: lease expired
    assert Rollback.objects.get(pk=rollback.pk).lease_until is None
    assert broker_view().holds("runs.run_rollback", rollback.pk)
    assert "rollbacks_requeued" not in runs_supervise()  # its message waits in the broker
    broker_clear()  # the broker lost it too
    assert runs_supervise()["rollbacks_requeued"] == 1
    done = run_rollback_execute(rollback_id=rollback.pk)
    assert (done.status, done.attempts) == ("verified", 2)
    assert Run.objects.get(pk=prepared.pk).status == RunStatus.ROLLED_BACK
    assert not original.exists()  # the first attempt can no longer record anything


def _dead_sync(plan, user, idle_s: int) -> Run:
    """A streaming sync run whose driver stopped renewing its lease ``idle_s`` seconds ago."""
    from mappings.services import plan_version_create

    last = timezone.now() - timedelta(seconds=idle_s)
    return Run.objects.create(
        plan=plan,
        version=plan_version_create(plan=plan, user=None),
        target=plan.target,
        mode=RunMode.SYNC,
        status=RunStatus.RUNNING,
        started_at=last - timedelta(minutes=10),
        launched_by=user,
        lease_until=last + timedelta(seconds=settings.MP_BATCH_LEASE_SECONDS),
        lease_holder="gone-host:4242:beef",
        cdc={"slot": "mp_sync_gone", "phase": "streaming", "start_lsn": 1},
    )


def test_sync_whose_worker_died_is_stalled_on_page_health_metrics_alerted_and_queued_again(
    demo_plan, broker, analyst, operator, settings, client_for, mailoutbox
):
    settings.MP_STALL_ALERT_SECONDS = 60
    analyst.email = "ana@example.com"
    analyst.save()
    run = _dead_sync(demo_plan, analyst, idle_s=90)
    report = runs_supervise()
    assert (report["syncs_requeued"], report["stall_alerts"]) == (1, 1)
    assert broker_view().holds("runs.cdc_sync", run.pk)
    assert runs_supervise() == {}  # its message waits in the broker; alerted once per stall
    note = Notification.objects.get(user=analyst)
    assert "no worker has driven the sync for" in note.message and "\n" not in mailoutbox[0].subject
    assert "queued again: it resumes from the checkpoint" in "".join(
        run.logs.values_list("message", flat=True)
    )
    client = client_for(operator)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="run-stalled"' in page and "gone-host:4242:beef" in page
    assert "no worker has driven this sync for" in page and "resumes from its checkpoint" in page
    health = client.get("/healthz")
    assert health.status_code == 200  # the web tier itself is fine ...
    runs = health.json()["runs"]
    assert (runs["ok"], runs["stalled"], runs["stalled_syncs"]) == (False, 1, 1)
    assert runs["longest_s"] >= 90
    assert client.get("/healthz?require=runs").status_code == 503  # ... a probe can ask for runs
    metrics = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert "mp_runs_stalled 1.0" in metrics
    (line,) = [x for x in metrics.splitlines() if x.startswith("mp_run_stalled_seconds{")]
    assert line.startswith(f'mp_run_stalled_seconds{{mode="sync",run="{run.uuid}"}} ')
    assert float(line.split()[-1]) >= 90
    # a new worker takes it: no longer stalled, and a second driver is refused
    assert sync_claim(run_id=run.pk)
    with pytest.raises(SyncBusy):
        sync_claim(run_id=run.pk)
    broker_clear()
    assert "syncs_requeued" not in runs_supervise()
    assert client.get("/healthz").json()["runs"]["stalled"] == 0
    assert 'id="run-stalled"' not in client.get(run.get_absolute_url()).content.decode()
