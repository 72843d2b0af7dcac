"""Enqueue Celery work only after the surrounding transaction commits.

Sending survives a broker outage: the commit stands and the error is logged; the supervisor
(``runs.services.supervise``) finds the work without a message and queues it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from runs.models import Batch

logger = logging.getLogger(__name__)


def _after_commit(send: Callable[[], object], what: str) -> None:
    """Run ``send`` after commit; a broker outage is logged, never raised (the commit stands)."""

    def guarded() -> None:
        try:
            send()
        except OperationalError:
            logger.exception("broker unavailable: %s not sent; the supervisor will resend", what)

    transaction.on_commit(guarded)


def enqueue_run_start(run_id: int) -> None:
    """Queue the run's preparation task (after commit)."""
    from runs.tasks import run_start

    _after_commit(lambda: run_start.delay(run_id), f"start of run {run_id}")


def enqueue_sync(run_id: int) -> None:
    """Queue a sync run's long task (after commit)."""
    from runs.tasks import cdc_sync_task

    _after_commit(lambda: cdc_sync_task.delay(run_id), f"sync run {run_id}")


def enqueue_batches(batch_ids: list[int]) -> None:
    """Queue one task per batch (after commit)."""
    from runs.tasks import batch_execute_task

    if not batch_ids:
        return
    # Recorded with the change that queues them: the supervisor looks for lost messages only
    # among batches queued more than a supervisor period ago (a message may be on its way).
    Batch.objects.filter(pk__in=batch_ids).update(queued_at=timezone.now())

    def send() -> None:
        for batch_id in batch_ids:
            batch_execute_task.delay(batch_id)

    _after_commit(send, f"{len(batch_ids)} batch message(s)")


def enqueue_rollback(rollback_id: int) -> None:
    """Queue a rollback task (after commit)."""
    from runs.tasks import run_rollback_task

    _after_commit(lambda: run_rollback_task.delay(rollback_id), f"rollback {rollback_id}")


def enqueue_reprocess(record_ids: list[int], user_id: int | None) -> None:
    """Queue a background re-process of failed records (after commit)."""
    from runs.tasks import failed_records_reprocess_task

    transaction.on_commit(lambda: failed_records_reprocess_task.delay(record_ids, user_id))
