"""HTML pages of the runs console."""

from .launch import run_launch_view
from .notifications import notification_list_view, notification_read_view
from .queue import (
    failed_record_correct_view,
    failed_record_view,
    queue_export_view,
    queue_ignore_view,
    queue_reprocess_view,
    queue_top_view,
    queue_view,
)
from .rollback import rollback_confirm_view, rollback_progress_view, rollback_status_view
from .runs import (
    run_compare_view,
    run_control_view,
    run_detail_view,
    run_list_view,
    run_live_view,
)

__all__ = [
    "failed_record_correct_view",
    "failed_record_view",
    "notification_list_view",
    "notification_read_view",
    "queue_export_view",
    "queue_ignore_view",
    "queue_reprocess_view",
    "queue_top_view",
    "queue_view",
    "rollback_confirm_view",
    "rollback_progress_view",
    "rollback_status_view",
    "run_compare_view",
    "run_control_view",
    "run_detail_view",
    "run_launch_view",
    "run_list_view",
    "run_live_view",
]
