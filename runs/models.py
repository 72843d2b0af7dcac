"""Runs, their batches, the ledger index, the error queue and rollbacks."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from mappings.models import Plan, PlanVersion, System

from .enums import (
    BatchKind,
    BatchStatus,
    FailedRecordStatus,
    LeasePurpose,
    LogLevel,
    RollbackStatus,
    RunMode,
    RunStatus,
    Stage,
)

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


class FailedRecord(models.Model):
    """A source row that could not be migrated: the error queue."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Written ~3,000 at a time per batch, so every per-row cost counts. db_index=False:
    # failed_record_unique_per_run (run, entity, source_key) covers run lookups. No database
    # FK constraints on run and batch: their deferred checks cost 29 ms per 3,300 records at
    # commit, and the only writers (services.recording, services.queue) insert inside the
    # transaction that has just updated that run's batch row. Deletes still cascade (Django).
    run = models.ForeignKey(
        Run,
        on_delete=models.CASCADE,
        related_name="failed_records",
        db_index=False,
        db_constraint=False,
    )
    batch = models.ForeignKey(
        Batch,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="failed_records",
        db_index=False,
        db_constraint=False,
    )
    entity = models.CharField(max_length=100)
    source_key = models.CharField(max_length=255)
    source_row = models.JSONField(default=dict)
    transformed_row = models.JSONField(default=dict, blank=True)
    stage = models.CharField(max_length=10, choices=Stage.choices)
    category = models.CharField(max_length=50)
    field = models.CharField(max_length=128, blank=True)
    rule = models.CharField(max_length=50, blank=True)
    message = models.TextField()
    errors = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=20, choices=FailedRecordStatus.choices, default=FailedRecordStatus.OPEN
    )
    corrected_values = models.JSONField(default=dict, blank=True)
    ignore_reason = models.TextField(blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # only deleting a user looks records up by it
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # What a re-run needs to carry an unchanged failure instead of transforming it again
    # (runs.engine.unchanged): the hash of the extracted source row and of the entity's rules
    # ("" when the batch kept no row state, or for load-stage failures), and the earlier
    # record a carried one was copied from (reopened if this run is rolled back).
    source_hash = models.CharField(max_length=64, blank=True, default="", db_default="")
    rules_hash = models.CharField(max_length=64, blank=True, default="", db_default="")
    carried_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        ordering = ["run", "entity", "source_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "entity", "source_key"],
                name="failed_record_unique_per_run",
                violation_error_message=(
                    "This source record already has a failed record in this run."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(status="ignored") | ~Q(ignore_reason=""),
                name="failed_record_ignore_needs_reason",
                violation_error_message="Ignoring a failed record needs a reason.",
            ),
        ]
        # Pages are keyset scans of (run, -id) filtered on the way; (run, status) counts the
        # open records of a run. (run, category) and (status, entity) went in 0006.
        indexes = [
            models.Index(fields=["run", "status"]),
            models.Index(fields=["run", "-id"], name="failed_record_run_page"),
        ]

    def __str__(self) -> str:
        return f"{self.entity}#{self.source_key}: {self.message[:60]}"


class FailedRecordTally(models.Model):
    """A signed count of failed records per (run, entity, stage, category, field, status).

    Written only by the PostgreSQL triggers of migration 0013 (one grouped row per statement
    that inserts, updates or deletes failed records); the sum of ``n`` over a group is the number
    of records in it. Read by runs.selectors.queue for counts and facets; unused on SQLite.
    """

    run = models.ForeignKey(
        Run, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    entity = models.CharField(max_length=100)
    stage = models.CharField(max_length=10)
    category = models.CharField(max_length=50)
    field = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=20)
    n = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["run", "status"], name="failed_record_tally_run")]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.entity}/{self.category}/{self.status}: {self.n:+}"


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
