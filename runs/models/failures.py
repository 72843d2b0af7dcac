"""The error queue: failed records, and the tally of them per run and category."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from ..enums import FailedRecordStatus, Stage
from .fields import JsonTextField
from .runs import Batch, Run


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
    # json, not jsonb (runs.models.fields): written in bulk, read whole, kept as written
    source_row = JsonTextField(default=dict)
    transformed_row = JsonTextField(default=dict, blank=True)
    stage = models.CharField(max_length=10, choices=Stage.choices)
    category = models.CharField(max_length=50)
    field = models.CharField(max_length=128, blank=True)
    rule = models.CharField(max_length=50, blank=True)
    message = models.TextField()
    errors = JsonTextField(default=list, blank=True)
    # NULL where a set-based insert (COPY, carry) leaves it out: no earlier failure
    earlier_failures = JsonTextField(
        null=True,
        default=list,
        blank=True,
        help_text="Failures this record had before its current one, oldest (the original) "
        "first: a failed re-process keeps them (stage, category, field, rule, message).",
    )
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
        # no database constraint: its deferred check was queued for every record a COPY
        # inserts (NULL here); deleting a user still sets it NULL (Django's SET_NULL)
        db_constraint=False,
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
        # Pages are keyset scans of (run, id), read backward, filtered on the way; ascending
        # so a batch's records append at its right edge (0020); (run, status) counts the
        # open records of a run. (run, category) and (status, entity) went in 0006. A re-run
        # that carries a key range whole reads one earlier batch's records (by batch).
        indexes = [
            models.Index(fields=["run", "status"]),
            models.Index(fields=["run", "id"], name="failed_record_run_page"),
            models.Index(fields=["batch"], name="failed_record_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.entity}#{self.source_key}: {self.message[:60]}"


class FailedMessage(models.Model):
    """One distinct failed-record message, keyed by ``md5(message)::uuid``: what the text
    filter's trigram index covers (a record's message is found through its digest).

    Written only by the PostgreSQL triggers of migration 0018 (every insert of failed records,
    every re-process that rewrites a message; deleting runs forgets the messages no record
    holds). Read by runs.selectors.queue; unused on SQLite.
    """

    digest = models.UUIDField(primary_key=True)
    message = models.TextField()

    def __str__(self) -> str:
        return self.message[:60]


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


class CarriedBatch(models.Model):
    """A re-run's batch that carried an earlier batch's failures whole, by reference (issue
    15): every failed record of ``source_batch`` (resolved through earlier references to the
    batch that holds them) counts as a failure of ``run`` — one row, no record written."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="carried_batches")
    # the tally's statuses of records a run shows carried (its own, or an earlier reference's,
    # carried on by a later reference) or superseded (a rolled-back reference) without a
    # record of its own: counted in that run's view, not in the view across runs
    TALLY_CARRIED = "ref:carried"
    TALLY_SUPERSEDED = "ref:superseded"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="carries")
    source_batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="carried_by")
    source_run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=100)
    records = models.PositiveIntegerField()
    # set when ``run`` is rolled back: its view shows the records superseded; they answer to
    # the run that carried them before
    rolled_back = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["batch"],
                name="carried_batch_one_per_batch",
                violation_error_message=(
                    "This batch already carries an earlier batch's failed records by reference."
                ),
            ),
        ]
        indexes = [models.Index(fields=["source_batch", "run"], name="carried_batch_source")]

    def __str__(self) -> str:
        return f"run {self.run_id} batch {self.batch_id} carries batch {self.source_batch_id}"
