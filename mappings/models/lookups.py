"""A plan's lookup tables (key → value) used by the lookup rules."""

from __future__ import annotations

import uuid

from django.db import models
from simple_history.models import HistoricalRecords

from .plans import Plan


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
