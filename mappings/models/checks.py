"""The plan's checks: validation rules and UAT test cases (plan content, versioned and signed
off with the plan; the validation app runs them and records their results).

Their code lives here, below the apps that use them; their Django app label stays
``validation`` (``Meta.app_label``), so their tables, migrations, content types, permissions and
the labels the audit log records are those they always had."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from ..enums import PRE_KINDS, Severity, ValidationKind, ValidationPhase


class ValidationRule(models.Model):
    """A pre- or post-migration check of a plan; blocking or warning."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(
        "mappings.Plan", on_delete=models.CASCADE, related_name="validation_rules"
    )
    name = models.CharField(max_length=150)
    phase = models.CharField(max_length=5, choices=ValidationPhase.choices)
    kind = models.CharField(max_length=30, choices=ValidationKind.choices)
    entity = models.CharField(max_length=100, help_text="Entity mapping name the rule checks.")
    column = models.CharField(max_length=128, blank=True)
    params = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.BLOCKING)
    enabled = models.BooleanField(default=True)

    class Meta:
        # Stored under the validation app as before (tables, migrations, permissions and the
        # audit log's "validation.ValidationRule" stay); the code is plan content, so it is here.
        app_label = "validation"
        ordering = ["plan", "phase", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "name"],
                name="validation_rule_name_unique",
                violation_error_message="This plan already has a validation rule with this name.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if (self.phase == ValidationPhase.PRE) != (self.kind in PRE_KINDS):
            raise ValidationError(
                {"kind": f"{self.get_kind_display()} is not a {self.phase} check."}
            )


class UATTestCase(models.Model):
    """A business test case testers run against a migrated target."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey("mappings.Plan", on_delete=models.CASCADE, related_name="uat_cases")
    title = models.CharField(max_length=200)
    steps = models.TextField()
    expected_result = models.TextField()
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        app_label = "validation"  # as ValidationRule: stored under the validation app
        ordering = ["plan", "position", "id"]
        verbose_name = "UAT test case"

    def __str__(self) -> str:
        return self.title
