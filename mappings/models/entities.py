"""What a plan moves: entity mappings, their field mappings and each field's rule steps."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from ..enums import DeletePolicy, LoadMode
from .plans import Plan


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
        return f"{', '.join(self.source_columns) or 'no source'} → {self.target_column}"


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
