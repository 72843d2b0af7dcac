"""Choices for the runs app."""

from django.db import models


class RunMode(models.TextChoices):
    DRY_RUN = "dry_run", "Dry run"
    LOAD = "load", "Load"
    DELTA = "delta", "Delta"
    SYNC = "sync", "Full load + CDC sync"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    CANCELLING = "cancelling", "Cancelling"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    ROLLING_BACK = "rolling_back", "Rolling back"
    ROLLED_BACK = "rolled_back", "Rolled back"


FINISHED_RUN_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.ROLLED_BACK,
)


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    PARKED = "parked", "Parked (kept killing workers)"
    CANCELLED = "cancelled", "Cancelled"
    ROLLED_BACK = "rolled_back", "Rolled back"


class BatchKind(models.TextChoices):
    ROWS = "rows", "Rows (extract, transform, load)"
    DELETES = "deletes", "Source deletes (delete policy)"


class Stage(models.TextChoices):
    EXTRACT = "extract", "Extract"
    TRANSFORM = "transform", "Transform"
    LOAD = "load", "Load"


class FailedRecordStatus(models.TextChoices):
    OPEN = "open", "Open"
    FIXED = "fixed", "Fixed (awaiting re-process)"
    REPROCESSED = "reprocessed", "Re-processed"
    IGNORED = "ignored", "Ignored"
    SUPERSEDED = "superseded", "Superseded (run rolled back)"
    CARRIED = "carried", "Carried into a later run"


class LeasePurpose(models.TextChoices):
    LOAD = "load", "load"
    DELTA = "delta", "delta"
    SYNC = "sync", "sync"
    REPROCESS = "reprocess", "re-process"
    ROLLBACK = "rollback", "rollback"


class RollbackStatus(models.TextChoices):
    RUNNING = "running", "Running"
    VERIFIED = "verified", "Verified"
    MISMATCH = "mismatch", "Checksum mismatch"
    FAILED = "failed", "Failed"


class LogLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
