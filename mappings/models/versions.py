"""A plan version: the frozen snapshot a run executes and a sign-off approves."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .plans import Plan


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
