"""A source or target system: where data comes from or goes to, its secret encrypted."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse

from migration_planner.lib import crypto
from migration_planner.lib.errors import ApplicationError

from ..enums import SystemEnvironment, SystemKind, SystemRole


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
        from ..destinations import system_destination_check

        try:
            system_destination_check(self)
        except ApplicationError as exc:
            raise ValidationError({exc.field or "path": exc.message}) from exc

    @property
    def is_production(self) -> bool:
        """Tagged prod, or pointing where a production system points (same server/file)."""
        from ..destinations import system_is_production

        return system_is_production(self)

    def set_secret(self, plaintext: str | None) -> None:
        """Encrypt and keep the secret; an empty value clears it."""
        self.secret_ciphertext = crypto.encrypt(plaintext) if plaintext else ""
        self._secret_set = True

    def connection_params(self) -> dict:
        """Connector parameters with the decrypted secret (PostgreSQL: never answering a
        cleartext password request); ApplicationError when the system points where it may
        not (our own database or files, outside MP_SYSTEMS_DIR). Never log or render this."""
        from ..destinations import pg_auth_params, system_destination_check

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
        from ..destinations import guard_params

        return self.connection_params() | guard_params(self.kind)
