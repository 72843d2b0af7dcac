"""A migration plan and its milestones."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from simple_history.models import HistoricalRecords

from ..enums import PlanStatus, PlanStrategy
from .systems import System


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
