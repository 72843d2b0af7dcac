"""Workers seen by the supervisor, and the leases that keep one writer per target table."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mappings.models import System

from ..enums import LeasePurpose
from .runs import Run


class Worker(models.Model):
    """A Celery worker as its parent process last reported itself (heartbeat)."""

    name = models.CharField(max_length=200, unique=True, help_text="Celery node name.")
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    concurrency = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_heartbeat"]

    def __str__(self) -> str:
        return self.name


class TableLease(models.Model):
    """One writer per target table: the run (load, delta, re-process, rollback) writing it now.

    A load/delta lease lasts until its run ends; re-process and rollback leases carry an
    ``expires_at`` they keep pushing forward while they work. ``table_lease_release_expired``
    (runs.services.leases) frees what a dead run left behind.
    """

    target = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    table = models.CharField(max_length=128)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="table_leases")
    purpose = models.CharField(max_length=10, choices=LeasePurpose.choices)
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acquired_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["target", "table"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "table"],
                name="table_lease_one_writer",
                violation_error_message="Another run is writing this target table: one "
                "writer per table.",
            ),
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def description(self) -> str:
        """ "accounts is being written by run #41 (load), started 12:03 by operator"."""
        from django.utils import timezone

        who = self.holder.get_username() if self.holder else "the system"
        started = timezone.localtime(self.acquired_at)
        return (
            f"{self.table} is being written by run #{self.run_id} "
            f"({self.get_purpose_display()}), started {started:%H:%M} by {who}"
        )
