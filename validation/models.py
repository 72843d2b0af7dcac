"""Validation rules and results, UAT, sign-off and the audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from mappings.models import Plan, PlanVersion
from runs.models import Run

from .enums import (
    PRE_KINDS,
    AuditAction,
    CutoverStatus,
    ResultStatus,
    Severity,
    SignOffDecision,
    UATOutcome,
    ValidationKind,
    ValidationPhase,
    Verdict,
)


class ValidationRule(models.Model):
    """A pre- or post-migration check of a plan; blocking or warning."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="validation_rules")
    name = models.CharField(max_length=150)
    phase = models.CharField(max_length=5, choices=ValidationPhase.choices)
    kind = models.CharField(max_length=30, choices=ValidationKind.choices)
    entity = models.CharField(max_length=100, help_text="Entity mapping name the rule checks.")
    column = models.CharField(max_length=128, blank=True)
    params = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.BLOCKING)
    enabled = models.BooleanField(default=True)

    class Meta:
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


class ValidationResult(models.Model):
    """The outcome of one rule on one occasion (a run, or on demand)."""

    rule = models.ForeignKey(ValidationRule, on_delete=models.CASCADE, related_name="results")
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.CASCADE, related_name="validation_results"
    )
    status = models.CharField(max_length=10, choices=ResultStatus.choices)
    expected = models.CharField(max_length=255, blank=True)
    observed = models.CharField(max_length=255, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.rule}: {self.status}"


class UATTestCase(models.Model):
    """A business test case testers run against a migrated target."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="uat_cases")
    title = models.CharField(max_length=200)
    steps = models.TextField()
    expected_result = models.TextField()
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["plan", "position", "id"]
        verbose_name = "UAT test case"

    def __str__(self) -> str:
        return self.title


class UATResult(models.Model):
    """A tester's outcome for one case on one run."""

    case = models.ForeignKey(UATTestCase, on_delete=models.CASCADE, related_name="results")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="uat_results")
    tester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=10, choices=UATOutcome.choices)
    comment = models.TextField(blank=True)
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["case", "-recorded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "run", "tester"],
                name="uat_result_once_per_tester",
                violation_error_message=(
                    "You have already recorded a result for this test case in this run."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(outcome__in=["fail", "blocked"]) | ~Q(comment=""),
                name="uat_failure_needs_comment",
                violation_error_message=(
                    "A failed or blocked UAT result needs a comment saying what went wrong."
                ),
            ),
        ]
        verbose_name = "UAT result"

    def __str__(self) -> str:
        return f"{self.case}: {self.outcome}"


class SignOff(models.Model):
    """An approver's decision on one plan version, bound to a run and a frozen report."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="signoffs")
    version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, related_name="signoffs")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=SignOffDecision.choices)
    reason = models.TextField(blank=True)
    report_snapshot = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(decision="rejected") | ~Q(reason=""),
                name="signoff_rejection_needs_reason",
                violation_error_message="Rejecting a plan version needs a reason.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version}: {self.decision}"

    @property
    def is_valid(self) -> bool:
        return self.decision == SignOffDecision.APPROVED and self.voided_at is None


class AuditEvent(models.Model):
    """Who did what to which object, when, with before/after (never secrets)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["action"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_repr}"


class RunReport(models.Model):
    """The post-migration reconciliation report of one run (accounting, checks, key diffs)."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="report")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    data = models.JSONField(default=dict)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"report of {self.run}: {self.verdict}"


class Cutover(models.Model):
    """One cutover of a plan: freeze of source writes, the checklist, the go / no-go decision,
    the measured downtime, and the rollback of everything written since the last sign-off."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="cutovers")
    status = models.CharField(
        max_length=12, choices=CutoverStatus.choices, default=CutoverStatus.OPEN
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    frozen_at = models.DateTimeField(null=True, blank=True, help_text="Source writes frozen.")
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    checklist = models.JSONField(default=list, blank=True, help_text="As it was at the decision.")
    downtime_seconds = models.PositiveIntegerField(null=True, blank=True)
    rolled_back_runs = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="go") | Q(frozen_at__isnull=False),
                name="cutover_go_needs_freeze",
                violation_error_message="A cutover can only be a go once the source is frozen.",
            ),
        ]

    def __str__(self) -> str:
        return f"cutover of {self.plan} ({self.get_status_display()})"
