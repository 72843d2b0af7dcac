"""Thin Celery entry points of the mappings app: take ids, call one service, log."""

from __future__ import annotations

import logging

from celery import shared_task

from runs.engine.errors import TransientError

logger = logging.getLogger(__name__)


@shared_task(
    name="mappings.file_upload_stage",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=3600,
    soft_time_limit=3500,
    max_retries=None,
)
def file_upload_stage_task(self, upload_id: int) -> str:
    """Parse and stage one uploaded file; waits while another upload of its system stages."""
    from .services_uploads import UploadBusy, file_upload_stage

    try:
        upload = file_upload_stage(upload_id=upload_id)
    except UploadBusy:
        raise self.retry(countdown=2) from None
    except TransientError as exc:
        if self.request.retries >= 5:
            raise
        raise self.retry(exc=exc, countdown=2**self.request.retries) from None
    outcome = "gone or finished" if upload is None else f"{upload.status}, {upload.rows} rows"
    logger.info("upload %s: %s", upload_id, outcome)
    return outcome
