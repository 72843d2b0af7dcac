"""Runs and their batches (with their row counters) and the ledger index of a batch."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from mappings.models import Plan, PlanVersion, System

from ..enums import BatchKind, BatchStatus, RunMode, RunStatus

COUNTERS = (
    "extracted",
    "loaded",
    "inserted",
    "updated",
    "unchanged",
    "failed",
    "filtered",
    "duplicates",
    "deleted",
)


class Counters(models.Model):
    """Row counters shared by runs and batches."""

    extracted = models.PositiveBigIntegerField(default=0)
    loaded = models.PositiveBigIntegerField(default=0)
    inserted = models.PositiveBigIntegerField(default=0)
    updated = models.PositiveBigIntegerField(default=0)
    unchanged = models.PositiveBigIntegerField(
        default=0, help_text="Loaded rows the target already held as-is (not rewritten)."
    )
    failed = models.PositiveBigIntegerField(default=0)
    filtered = models.PositiveBigIntegerField(default=0)
    duplicates = models.PositiveBigIntegerField(default=0)
    # Target rows a delta run deleted or marked because their source row was deleted.
    deleted = models.PositiveBigIntegerField(default=0)

    class Meta:
        abstract = True


class Run(Counters):
    """One execution of a frozen plan version against a target system."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, related_name="runs")
    target = models.ForeignKey(System, on_delete=models.PROTECT, related_name="runs")
    mode = models.CharField(max_length=10, choices=RunMode.choices, default=RunMode.DRY_RUN)
    scope_entity = models.CharField(max_length=100, blank=True, help_text="Only this entity.")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    source_total = models.PositiveBigIntegerField(default=0)
    batches_total = models.PositiveIntegerField(default=0)
    pre_checksums = models.JSONField(default=dict, blank=True)
    entity_totals = models.JSONField(
        default=dict, blank=True, help_text="Source rows in scope per entity, taken at start."
    )
    watermarks = models.JSONField(
        default=dict, blank=True, help_text="Per entity: high-water mark of the watermark column."
    )
    cdc = models.JSONField(
        default=dict, blank=True, help_text="Sync runs: slot, phase, position, lag, counts."
    )
    phase = models.PositiveSmallIntegerField(
        default=0, help_text="Index (in load order) of the entity whose batches are running."
    )
    error = models.TextField(blank=True)
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While a worker prepares the run (or drives a sync run): past this, the "
        "supervisor prepares it (queues the sync) again.",
    )
    lease_holder = models.CharField(
        max_length=200, blank=True, help_text="Sync runs: the process driving it (host:pid:token)."
    )
    stall_alerted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the supervisor last alerted that the run stalled."
    )
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["plan", "-created_at"]), models.Index(fields=["status"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(started_at__isnull=False),
                name="run_finished_after_started",
                violation_error_message="A run cannot have finished without having started.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} · {self.get_mode_display()} · {self.created_at:%Y-%m-%d %H:%M}"

    def get_absolute_url(self) -> str:
        return reverse("runs:run_detail", args=[self.uuid])

    @property
    def number(self) -> int:
        """The run's number as people say it ("run #41")."""
        return self.pk


class Batch(Counters):
    """One keyset range of one entity: the unit of work a Celery task claims."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="batches")
    entity = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=BatchKind.choices, default=BatchKind.ROWS)
    seq = models.PositiveIntegerField()
    key_lower = models.JSONField(null=True, blank=True)
    key_upper = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    lost_attempts = models.PositiveSmallIntegerField(
        default=0,
        help_text="Attempts whose worker was lost mid-batch (lease expired); 3 park the batch. "
        "Transient database errors do not count.",
    )
    worker = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A running batch whose lease expired may be re-claimed."
    )
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When a message for this batch was last sent."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "seq"],
                name="batch_seq_unique_in_run",
                violation_error_message="This run already has a batch with this number.",
            ),
        ]
        indexes = [models.Index(fields=["run", "status"])]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.run_id}/{self.entity}#{self.seq}"

    @property
    def ledger_id(self) -> str:
        """The batch's identity in the target's ledger."""
        return f"{self.entity}:{self.seq}"


class LedgerEntry(models.Model):
    """Index of one batch's ledger in the target (keys written, before-images, row hashes).

    The ledger itself lives in the target database (schema ``mp_ledger``), written in the same
    transaction as the rows; this row is the application's copy of its totals.
    """

    batch = models.OneToOneField(Batch, on_delete=models.CASCADE, related_name="ledger")
    entity = models.CharField(max_length=100)
    target_table = models.CharField(max_length=128)
    inserted = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    committed_at = models.DateTimeField()
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"ledger {self.batch}"
