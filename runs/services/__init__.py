"""Run services: launch and control, batch execution, rollback and the error queue.

Tasks (runs/tasks.py) and views call these; nothing here is Celery-specific apart from
enqueueing through ``runs.services.dispatch`` after the transaction commits.
"""

from .cdc import sync_run, sync_stop
from .control import run_cancel, run_pause, run_resume
from .execution import BatchBusy, batch_execute, run_finish, run_prepare
from .launch import run_create
from .queue import (
    failed_record_correct,
    failed_record_ignore,
    failed_record_reprocess,
    failed_records_reprocess_background,
    failed_records_reprocess_later,
)
from .rollback import run_rollback_execute, run_rollback_request
from .supervise import runs_supervise

__all__ = [
    "BatchBusy",
    "batch_execute",
    "failed_record_correct",
    "failed_record_ignore",
    "failed_record_reprocess",
    "failed_records_reprocess_background",
    "failed_records_reprocess_later",
    "run_cancel",
    "run_create",
    "run_finish",
    "run_pause",
    "run_prepare",
    "run_resume",
    "run_rollback_execute",
    "run_rollback_request",
    "runs_supervise",
    "sync_run",
    "sync_stop",
]
