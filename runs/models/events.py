"""What follows a run: its log lines, its rollbacks and the notifications it sends."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ..enums import LogLevel, RollbackStatus
from .runs import Run


class RunLog(models.Model):
    """A line of the run's log, shown live on the run page."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["run", "-at", "-id"]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"


class Rollback(models.Model):
    """One rollback of a run, with its verification against the pre-run checksums."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="rollbacks")
    status = models.CharField(
        max_length=20, choices=RollbackStatus.choices, default=RollbackStatus.RUNNING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    batches_undone = models.PositiveIntegerField(default=0)
    rows_deleted = models.PositiveBigIntegerField(default=0)
    rows_restored = models.PositiveBigIntegerField(default=0)
    checksums_before_run = models.JSONField(default=dict, blank=True)
    checksums_after = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    chain = models.JSONField(
        default=list,
        blank=True,
        help_text="Runs (ids) to roll back after this one, in order, each only if this verified.",
    )
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While a worker undoes the run: past this, the supervisor queues it again.",
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "-started_at"]

    def __str__(self) -> str:
        return f"rollback of {self.run} ({self.status})"


class Notification(models.Model):
    """An in-app alert about a run (failed, threshold passed, finished, rolled back)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="run_notifications"
    )
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.CharField(max_length=500)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.message[:60]}"
