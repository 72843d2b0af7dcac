"""Run services: launch and control, batch execution, rollback and the error queue.

Tasks (runs/tasks.py) and views call these; nothing here is Celery-specific apart from
enqueueing through ``runs.services.dispatch`` after the transaction commits.
"""

from .batches import BatchBusy, batch_execute
from .cdc import sync_run, sync_stop
from .control import run_cancel, run_pause, run_resume
from .execution import run_finish, run_prepare
from .launch import run_create
from .leases import (
    TableBusy,
    table_lease_acquire,
    table_lease_release,
    table_lease_release_expired,
    table_leases_for,
)
from .queue import (
    failed_record_reprocess,
    failed_records_reprocess_background,
    failed_records_reprocess_later,
)
from .queue_actions import failed_record_correct, failed_record_ignore, failed_records_supersede
from .rollback import run_rollback_execute, run_rollback_request, run_rollback_stack_request
from .rollback_order import RollbackOrderError, run_rollback_blockers
from .supervise import runs_supervise
from .sync_lease import SyncBusy, sync_drive

__all__ = [
    "BatchBusy",
    "RollbackOrderError",
    "SyncBusy",
    "TableBusy",
    "batch_execute",
    "failed_record_correct",
    "failed_record_ignore",
    "failed_records_supersede",
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
    "run_rollback_blockers",
    "run_rollback_request",
    "run_rollback_stack_request",
    "table_lease_acquire",
    "table_lease_release",
    "table_lease_release_expired",
    "table_leases_for",
    "runs_supervise",
    "sync_drive",
    "sync_run",
    "sync_stop",
]
