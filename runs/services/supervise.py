"""The supervisor: our database owns progress, the broker only carries messages.

Celery beat queues ``runs.supervise`` every ``MP_SUPERVISOR_SECONDS``; one pass puts back to
work whatever nobody drives any more: batches whose worker vanished (lease expired), runs and
batches whose message the broker lost, runs whose last batch ended while nobody listened,
cancelling runs whose running batches will never report, rollbacks and sync runs whose worker
vanished (lease expired) or whose message was lost, and target-table leases whose holder is
gone (``table_lease_release_expired``). Every change is a conditional update or a message a
claim makes harmless, so passes may overlap and a late original worker can never record a
batch twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from runs.enums import BatchStatus, LogLevel, RollbackStatus, RunMode, RunStatus
from runs.models import Batch, Rollback, Run

from .broker import BrokerView, broker_view
from .dispatch import enqueue_batches, enqueue_rollback, enqueue_run_start, enqueue_sync
from .execution import _advance, _finish_if_idle, run_finish
from .leases import table_lease_release_expired
from .logging import run_log
from .state import run_entities

logger = logging.getLogger(__name__)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _batch_runs():
    """Runs driven batch by batch (a sync run is one long resumable task of its own: only its
    lost start message is the supervisor's business)."""
    return Run.objects.exclude(mode=RunMode.SYNC)


def _expired_leases(now, report: Counter) -> set[int]:
    """Running batches whose lease expired: back to pending (running run, queued again),
    kept pending (paused run) or cancelled (cancelling run). Returns the ids queued."""
    queued: set[int] = set()
    expired = Batch.objects.filter(status=BatchStatus.RUNNING, lease_until__lt=now).select_related(
        "run"
    )
    for batch in expired:
        mine = Batch.objects.filter(
            pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts, lease_until__lt=now
        )
        lost = f"worker {batch.worker or '?'} stopped renewing its lease"
        status = batch.run.status
        if status == RunStatus.CANCELLING:
            to, what, kind = BatchStatus.CANCELLED, "cancelled", "batches_cancelled"
        elif status in (RunStatus.RUNNING, RunStatus.PAUSED):
            to, what, kind = BatchStatus.PENDING, "queued again", "leases_expired"
        else:
            continue
        if not mine.update(
            status=to, lease_until=None, error=lost, lost_attempts=F("lost_attempts") + 1
        ):
            continue  # claimed again meanwhile
        report[kind] += 1
        run_log(batch.run, f"Batch {batch.seq} ({batch.entity}): {lost}; {what}.", LogLevel.WARNING)
        if status == RunStatus.RUNNING:
            queued.add(batch.pk)
    enqueue_batches(sorted(queued))
    return queued


def _queued_runs(now, view: BrokerView | None, report: Counter) -> None:
    """Queued runs whose start message never reached the broker (web killed after commit),
    and runs whose preparing worker vanished: queue the start again."""
    stale = now - _seconds(settings.MP_SUPERVISOR_SECONDS)
    if view is not None:
        queued = Run.objects.filter(status=RunStatus.QUEUED, created_at__lt=stale)
        for run_id, mode in queued.values_list("pk", "mode"):
            task = "runs.cdc_sync" if mode == RunMode.SYNC else "runs.run_start"
            if not view.holds(task, run_id):
                (enqueue_sync if mode == RunMode.SYNC else enqueue_run_start)(run_id)
                report["runs_started"] += 1
    for run in _batch_runs().filter(status=RunStatus.RUNNING, lease_until__lt=now):
        if Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, lease_until__lt=now).update(
            status=RunStatus.QUEUED, lease_until=None
        ):
            run_log(run, "The worker preparing the run stopped; preparing again.", LogLevel.WARNING)
            enqueue_run_start(run.pk)
            report["runs_restarted"] += 1


def _lost_messages(now, view: BrokerView | None, skip: set[int], report: Counter) -> None:
    """Pending batches of a running run's current entity with no message in the broker
    (queued more than a supervisor period ago: a fresh message may still be on its way)."""
    if view is None:
        return
    stale = now - _seconds(settings.MP_SUPERVISOR_SECONDS)
    lost: list[int] = []
    for run in _batch_runs().filter(status=RunStatus.RUNNING, lease_until__isnull=True):
        entities = run_entities(run)
        if run.phase >= len(entities):
            continue
        pending = (
            Batch.objects.filter(
                run=run, entity=entities[run.phase].name, status=BatchStatus.PENDING
            )
            .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=stale))
            .values_list("pk", flat=True)
        )
        missing = [
            pk for pk in pending if pk not in skip and not view.holds("runs.batch_execute", pk)
        ]
        if missing:
            run_log(
                run,
                f"{len(missing):,} pending batch(es) had no message in the broker; queued again.",
                LogLevel.WARNING,
            )
            lost += missing
    enqueue_batches(lost)
    if lost:
        report["messages_requeued"] += len(lost)


def _idle_runs(report: Counter) -> None:
    """Runs nobody drives: advance/finish a running run whose current entity has no pending or
    running batch; end a cancelling run with no running batch."""
    for run in _batch_runs().filter(status=RunStatus.RUNNING, lease_until__isnull=True):
        if run.started_at is None:
            continue
        entities = run_entities(run)
        if run.phase >= len(entities):
            run_finish(run_id=run.pk)
            report["runs_finished"] += 1
            continue
        busy = Batch.objects.filter(
            run=run,
            entity=entities[run.phase].name,
            status__in=[BatchStatus.PENDING, BatchStatus.RUNNING],
        ).exists()
        if not busy:
            _advance(run)
            report["runs_advanced"] += 1
    for run in _batch_runs().filter(status=RunStatus.CANCELLING):
        _finish_if_idle(None, run=run)


def _stalls(now, report: Counter) -> None:
    """Alert once per stall: a running run with pending batches that nobody claimed lately,
    or a sync run that nobody has driven lately (its driver's lease ran out)."""
    from runs.notifications import notify_run_stalled
    from runs.selectors import run_idle_seconds

    for run in Run.objects.filter(status=RunStatus.RUNNING):
        idle = run_idle_seconds(run, now=now)
        if idle is None or idle < settings.MP_STALL_ALERT_SECONDS:
            continue
        since = now - _seconds(idle)
        if run.stall_alerted_at is not None and run.stall_alerted_at >= since:
            continue  # already alerted for this stall
        if Run.objects.filter(pk=run.pk, stall_alerted_at=run.stall_alerted_at).update(
            stall_alerted_at=now
        ):
            what = "driven the sync" if run.mode == RunMode.SYNC else "taken a batch"
            run_log(run, f"Stalled: no worker has {what} for {idle} s.", LogLevel.ERROR)
            notify_run_stalled(run, idle_seconds=idle)
            report["stall_alerts"] += 1


def _rollbacks(now, view: BrokerView | None, report: Counter) -> None:
    """Rollbacks nobody works: a claim whose lease expired (its worker died) is given up and
    the rollback queued again; an unclaimed one whose message the broker lost (older than a
    period) is queued again. The next attempt resumes from the target's ledger."""
    stale = now - _seconds(settings.MP_SUPERVISOR_SECONDS)
    running = Rollback.objects.filter(status=RollbackStatus.RUNNING)
    queued: set[int] = set()
    for rollback in running.filter(lease_until__lt=now):
        if Rollback.objects.filter(
            pk=rollback.pk, attempts=rollback.attempts, lease_until__lt=now
        ).update(lease_until=None):
            run_log(
                rollback.run_id,
                f"Rollback: worker {rollback.worker or '?'} stopped renewing its lease; "
                "queued again (it resumes where it stopped).",
                LogLevel.WARNING,
            )
            queued.add(rollback.pk)
    if view is not None:
        unclaimed = running.filter(lease_until__isnull=True, started_at__lt=stale)
        for pk, run_id in unclaimed.exclude(pk__in=queued).values_list("pk", "run_id"):
            if not view.holds("runs.run_rollback", pk):
                run_log(
                    run_id, "Rollback had no message in the broker; queued again.", LogLevel.WARNING
                )
                queued.add(pk)
    for pk in sorted(queued):
        enqueue_rollback(pk)
    if queued:
        report["rollbacks_requeued"] += len(queued)


def _syncs(now, view: BrokerView | None, report: Counter) -> None:
    """Sync runs nobody drives (the driver's lease ran out, or none ever claimed it) and with
    no message in the broker: queue the sync task again. It resumes streaming from the target's
    checkpoint (during its full load: with the batches not done yet)."""
    from runs.selectors import run_idle_seconds

    if view is None:
        return
    for run in Run.objects.filter(mode=RunMode.SYNC, status=RunStatus.RUNNING):
        idle = run_idle_seconds(run, now=now)
        if idle is None or idle < settings.MP_BATCH_LEASE_SECONDS:
            continue
        if view.holds("runs.cdc_sync", run.pk):
            continue
        resume = (
            "it resumes from the checkpoint"
            if run.cdc.get("phase") != "full_load"
            else "its full load resumes with the batches not done yet"
        )
        run_log(
            run,
            f"No worker has driven the sync for {idle} s (last: {run.lease_holder or '?'}); "
            f"queued again: {resume}.",
            LogLevel.WARNING,
        )
        enqueue_sync(run.pk)
        report["syncs_requeued"] += 1


def _table_leases(now, report: Counter) -> None:
    """Release the table leases (one writer per table) whose holder stopped renewing them."""
    released = table_lease_release_expired(now=now)
    if released:
        report["table_leases_released"] += released


def runs_supervise() -> dict[str, int]:
    """One supervisor pass; returns what it did per kind. Idempotent and safe to run in
    several workers at once (conditional updates; a duplicate message is refused by the
    batch claim). Never raises for a broker outage (message checks wait for the next pass)."""
    now = timezone.now()
    report: Counter = Counter()
    view = broker_view()
    queued = _expired_leases(now, report)
    _queued_runs(now, view, report)
    _lost_messages(now, view, queued, report)
    _idle_runs(report)
    _rollbacks(now, view, report)
    _syncs(now, view, report)
    _table_leases(now, report)
    _stalls(now, report)
    if report:
        logger.info("supervisor: %s", dict(report))
    return dict(report)
