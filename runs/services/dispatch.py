"""Enqueue Celery work only after the surrounding transaction commits."""

from __future__ import annotations

from django.db import transaction


def enqueue_run_start(run_id: int) -> None:
    """Queue the run's preparation task (after commit)."""
    from runs.tasks import run_start

    transaction.on_commit(lambda: run_start.delay(run_id))


def enqueue_sync(run_id: int) -> None:
    """Queue a sync run's long task (after commit)."""
    from runs.tasks import cdc_sync_task

    transaction.on_commit(lambda: cdc_sync_task.delay(run_id))


def enqueue_batches(batch_ids: list[int]) -> None:
    """Queue one task per batch (after commit)."""
    from runs.tasks import batch_execute_task

    def send() -> None:
        for batch_id in batch_ids:
            batch_execute_task.delay(batch_id)

    transaction.on_commit(send)


def enqueue_rollback(rollback_id: int) -> None:
    """Queue a rollback task (after commit)."""
    from runs.tasks import run_rollback_task

    transaction.on_commit(lambda: run_rollback_task.delay(rollback_id))


def enqueue_reprocess(record_ids: list[int], user_id: int | None) -> None:
    """Queue a background re-process of failed records (after commit)."""
    from runs.tasks import failed_records_reprocess_task

    transaction.on_commit(lambda: failed_records_reprocess_task.delay(record_ids, user_id))
