"""Systems, plans and their mappings: what to move, from where, to where, and how."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from simple_history.models import HistoricalRecords

from migration_planner.lib import crypto
from migration_planner.lib.errors import ApplicationError

from .enums import (
    DeletePolicy,
    LoadMode,
    PlanStatus,
    PlanStrategy,
    SystemEnvironment,
    SystemKind,
    SystemRole,
    UploadStatus,
)
from .models_checks import UATTestCase, ValidationRule  # noqa: F401  (the plan's checks)


class System(models.Model):
    """A source or target system; its secret is stored encrypted and never rendered back."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=SystemKind.choices)
    environment = models.CharField(
        max_length=10, choices=SystemEnvironment.choices, default=SystemEnvironment.DEV
    )
    role = models.CharField(max_length=10, choices=SystemRole.choices, default=SystemRole.BOTH)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    database = models.CharField(
        max_length=255, blank=True, help_text="Database name (PostgreSQL, MySQL)."
    )
    username = models.CharField(max_length=100, blank=True)
    path = models.CharField(
        max_length=500, blank=True, help_text="SQLite file or staging database."
    )
    options = models.JSONField(default=dict, blank=True)
    secret_ciphertext = models.TextField(blank=True, editable=False)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="postgresql") | (~Q(host="") & ~Q(database="")),
                name="system_postgresql_has_host_and_database",
                violation_error_message="A PostgreSQL system needs a host and a database name.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="sqlite") | ~Q(path=""),
                name="system_sqlite_has_path",
                violation_error_message="An SQLite system needs the path of its database file.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="mysql") | (~Q(host="") & ~Q(database="")),
                name="system_mysql_has_host_and_database",
                violation_error_message="A MySQL system needs a host and a database name.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="mysql") | Q(role="source"),
                name="system_mysql_is_a_source",
                violation_error_message="A MySQL system can only be a source: set its role to "
                "“Source” (runs load into PostgreSQL or SQLite).",
            ),
            models.CheckConstraint(
                condition=Q(port__isnull=True) | Q(port__gte=1, port__lte=65535),
                name="system_port_in_range",
                violation_error_message="The port must be between 1 and 65535.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:  # never include connection details or the secret
        return f"<System {self.name} ({self.kind})>"

    def save(self, *args, **kwargs) -> None:
        if self.destination_changed and not getattr(self, "_secret_set", False):
            self.secret_ciphertext = ""  # never send the old secret somewhere new
        super().save(*args, **kwargs)
        self._loaded_destination = self.destination()
        self._secret_set = False

    def get_absolute_url(self) -> str:
        return reverse("mappings:system_detail", args=[self.uuid])

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)

    # Changing where the secret goes (any of these) clears it unless a new one is set with it.
    DESTINATION_FIELDS = ("kind", "host", "port", "database", "username", "path")

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_destination = instance.destination()
        return instance

    def destination(self) -> tuple:
        """Where the secret is sent: kind, host, port, database, user, path."""
        return tuple(str(getattr(self, f) or "") for f in self.DESTINATION_FIELDS)

    @property
    def destination_changed(self) -> bool:
        loaded = getattr(self, "_loaded_destination", None)
        return loaded is not None and loaded != self.destination()

    def clean(self) -> None:
        from .destinations import system_destination_check

        try:
            system_destination_check(self)
        except ApplicationError as exc:
            raise ValidationError({exc.field or "path": exc.message}) from exc

    @property
    def is_production(self) -> bool:
        """Tagged prod, or pointing where a production system points (same server/file)."""
        from .destinations import system_is_production

        return system_is_production(self)

    def set_secret(self, plaintext: str | None) -> None:
        """Encrypt and keep the secret; an empty value clears it."""
        self.secret_ciphertext = crypto.encrypt(plaintext) if plaintext else ""
        self._secret_set = True

    def connection_params(self) -> dict:
        """Connector parameters with the decrypted secret (PostgreSQL: never answering a
        cleartext password request); ApplicationError when the system points where it may
        not (our own database or files, outside MP_SYSTEMS_DIR). Never log or render this."""
        from .destinations import pg_auth_params, system_destination_check

        system_destination_check(self)
        if self.kind in (SystemKind.POSTGRESQL, SystemKind.MYSQL):
            params = {
                **self.options,
                "host": self.host,
                "port": self.port or (5432 if self.kind == SystemKind.POSTGRESQL else 3306),
                "dbname": self.database,
                "user": self.username,
            }
            if self.secret_ciphertext:
                params["password"] = crypto.decrypt(self.secret_ciphertext)
            return params | (pg_auth_params() if self.kind == SystemKind.POSTGRESQL else {})
        return {**self.options, "path": self.path}

    def guarded_connection_params(self) -> dict:
        """``connection_params`` plus the guard the engine's ``connect`` checks again
        (allowed root, refused files and servers)."""
        from .destinations import guard_params

        return self.connection_params() | guard_params(self.kind)


class Blob(models.Model):
    """Bytes kept in the application database in chunks (``BlobChunk``), so that a worker on
    another host reads them without a shared disk, and nobody holds them whole in memory."""

    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"blob {self.sha256[:12]} ({self.size:,} bytes)"


class BlobChunk(models.Model):
    """One piece (at most 4 MB) of a blob, in order."""

    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["blob", "seq"],
                name="blob_chunk_seq_unique",
                violation_error_message="This piece of the stored file is already stored.",
            ),
        ]

    def __str__(self) -> str:
        return f"chunk {self.seq} of blob {self.blob_id}"


class StagedFile(models.Model):
    """A file system's staging database (SQLite), kept in the application database so that a
    worker on another host reads the same data: it copies it to its own disk on first use."""

    system = models.OneToOneField(System, on_delete=models.CASCADE, related_name="staged_file")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    blob = models.OneToOneField(Blob, on_delete=models.PROTECT, null=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"staged data of {self.system_id} ({self.size:,} bytes)"


class FileUpload(models.Model):
    """A file uploaded to a file system: its raw bytes (a blob, until staged), then a worker's
    progress parsing it, and the outcome (the table and rows staged, or where it failed)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    table = models.CharField(max_length=63)
    size = models.PositiveBigIntegerField()
    blob = models.ForeignKey(Blob, on_delete=models.SET_NULL, null=True, related_name="+")
    status = models.CharField(
        max_length=10, choices=UploadStatus.choices, default=UploadStatus.QUEUED
    )
    rows_parsed = models.PositiveBigIntegerField(default=0)
    bytes_read = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveBigIntegerField(null=True, blank=True)
    columns = models.JSONField(default=list, blank=True)
    preview = models.JSONField(default=list, blank=True)
    format = models.CharField(max_length=10, blank=True)
    encoding = models.CharField(max_length=40, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    error = models.TextField(blank=True)
    error_row = models.PositiveBigIntegerField(null=True, blank=True)
    error_column = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} → {self.system_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (UploadStatus.STAGED, UploadStatus.FAILED)

    @property
    def percent(self) -> int:
        """Share of the file's bytes read so far (0-100)."""
        return min(100, int(100 * self.bytes_read / self.size)) if self.size else 100


class Plan(models.Model):
    """A migration plan: source, target, strategy and the entity mappings beneath it."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=150)
    slug = models.SlugField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    source = models.ForeignKey(System, on_delete=models.PROTECT, related_name="plans_as_source")
    target = models.ForeignKey(System, on_delete=models.PROTECT, related_name="plans_as_target")
    strategy = models.CharField(
        max_length=20, choices=PlanStrategy.choices, default=PlanStrategy.BIG_BANG
    )
    batch_size = models.PositiveIntegerField(default=10_000)
    parallelism = models.PositiveSmallIntegerField(default=2)
    failure_threshold_pct = models.DecimalField(max_digits=5, decimal_places=2, default=10)
    rollback_on_threshold = models.BooleanField(
        default=False, help_text="Roll the run back automatically when the threshold is passed."
    )
    status = models.CharField(max_length=20, choices=PlanStatus.choices, default=PlanStatus.DRAFT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_plans",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="Archived plans leave the lists; runs stay readable."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="plan_name_unique",
                violation_error_message="A plan with this name already exists: names are unique.",
            ),
            models.CheckConstraint(
                condition=Q(batch_size__gte=1),
                name="plan_batch_size_positive",
                violation_error_message="The batch size must be at least 1 row.",
            ),
            models.CheckConstraint(
                condition=Q(parallelism__gte=1, parallelism__lte=64),
                name="plan_parallelism_range",
                violation_error_message="Parallelism must be between 1 and 64 batches at a time.",
            ),
            models.CheckConstraint(
                condition=Q(failure_threshold_pct__gte=0, failure_threshold_pct__lte=100),
                name="plan_failure_threshold_pct_range",
                violation_error_message="The failure threshold is a percentage between 0 and 100.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("mappings:plan_detail", args=[self.slug])


class Milestone(models.Model):
    """A phase of the plan's timeline with its deliverable."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="milestones")
    phase = models.CharField(max_length=100)
    start = models.DateField()
    end = models.DateField()
    deliverable = models.CharField(max_length=255, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["plan", "position", "start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gte=models.F("start")),
                name="milestone_end_after_start",
                violation_error_message=(
                    "A milestone cannot end before it starts: pick "
                    "an end date on or after the start date."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.phase} ({self.start} – {self.end})"


class EntityMapping(models.Model):
    """One source table (or staged file) into one target table."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="entities")
    name = models.SlugField(max_length=100)
    source_table = models.CharField(max_length=128)
    target_table = models.CharField(max_length=128)
    source_key = models.JSONField(default=list, help_text="Source key column(s), in order.")
    target_key = models.CharField(max_length=128, default="id")
    external_id = models.CharField(max_length=128, blank=True)
    load_mode = models.CharField(max_length=10, choices=LoadMode.choices, default=LoadMode.INSERT)
    load_order = models.PositiveSmallIntegerField(default=0)
    filters = models.JSONField(default=list, blank=True)
    dedupe_on = models.JSONField(default=list, blank=True)
    watermark_column = models.CharField(max_length=128, blank=True)
    delete_policy = models.CharField(
        max_length=10,
        choices=DeletePolicy.choices,
        default=DeletePolicy.IGNORE,
        help_text="What a delta run does with target rows whose source row was deleted.",
    )
    delete_mark_column = models.CharField(
        max_length=128, blank=True, help_text="Target column the 'mark' policy sets."
    )
    delete_mark_value = models.CharField(
        max_length=200, blank=True, help_text="Value it sets ('now' = the time of the delta run)."
    )
    notes = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["plan", "load_order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "name"],
                name="entity_name_unique_in_plan",
                violation_error_message="This plan already has an entity with this name.",
            ),
            models.CheckConstraint(
                condition=~Q(load_mode="upsert") | ~Q(external_id=""),
                name="entity_upsert_needs_external_id",
                violation_error_message=(
                    "Upsert needs an external id column to match existing target rows."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(delete_policy="mark") | ~Q(delete_mark_column=""),
                name="entity_mark_policy_needs_column",
                violation_error_message=(
                    "The “mark” delete policy needs the target column to mark deleted rows in."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.source_table} → {self.target_table}"

    def clean(self) -> None:
        if not isinstance(self.source_key, list) or not self.source_key:
            raise ValidationError({"source_key": "Name at least one source key column."})


class FieldMapping(models.Model):
    """A target column fed by source column(s) through an ordered rule chain."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    entity = models.ForeignKey(EntityMapping, on_delete=models.CASCADE, related_name="fields")
    target_column = models.CharField(max_length=128)
    source_columns = models.JSONField(default=list, blank=True)
    default_value = models.TextField(null=True, blank=True)
    required = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    notes = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["entity", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "target_column"],
                name="field_target_unique_in_entity",
                violation_error_message="This target column is already mapped in this entity.",
            ),
        ]

    def __str__(self) -> str:
        return f"{', '.join(self.source_columns) or '∅'} → {self.target_column}"


class RuleStep(models.Model):
    """One step of a field's rule chain: a registry rule and its parameters."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    field = models.ForeignKey(FieldMapping, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    rule = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["field", "position", "id"]

    def __str__(self) -> str:
        return f"{self.rule}({self.params})"


class LookupTable(models.Model):
    """A named value map (e.g. status codes, state codes) with a default for unmapped values."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="lookups")
    name = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    default_value = models.CharField(max_length=255, null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["plan", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "name"],
                name="lookup_name_unique_in_plan",
                violation_error_message="This plan already has a lookup table with this name.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class LookupEntry(models.Model):
    """One key → value row of a lookup table."""

    table = models.ForeignKey(LookupTable, on_delete=models.CASCADE, related_name="entries")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=255)
    history = HistoricalRecords()

    class Meta:
        ordering = ["table", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["table", "key"],
                name="lookup_key_unique_in_table",
                violation_error_message="This lookup table already has an entry with this key.",
            ),
        ]
        verbose_name_plural = "lookup entries"

    def __str__(self) -> str:
        return f"{self.key} → {self.value}"


class PlanVersion(models.Model):
    """Immutable, hashed snapshot of a whole plan: what a run executes and a sign-off approves."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    snapshot = models.JSONField()
    content_hash = models.CharField(max_length=64)
    # The source and target schema the version was built against, for the tables its entities
    # use: {"source": {table: {...}}, "target": {table: {...}}} (runs.engine.drift.table_schema);
    # {} for versions frozen before schemas were stored (then only existence is checked).
    schemas = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "number"],
                name="version_number_unique_in_plan",
                violation_error_message="This plan already has a version with this number.",
            ),
            models.CheckConstraint(
                condition=Q(number__gte=1),
                name="version_number_positive",
                violation_error_message="Version numbers start at 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError("A plan version is immutable once created.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("A plan version is immutable and cannot be deleted.")
