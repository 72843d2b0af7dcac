"""Validation results, UAT results, sign-off, run reports and cutovers.

The checks themselves (``ValidationRule``, ``UATTestCase``) are plan content and live in
``mappings``; they are re-exported here for the old import path."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from mappings.models import Plan, PlanVersion, UATTestCase, ValidationRule
from migration_planner.audit.models import AuditEvent  # noqa: F401  (moved; old import path)
from runs.models import Rollback, Run

from .enums import (
    PASSING_VERDICTS,
    CutoverStatus,
    ResultStatus,
    SignOffDecision,
    UATOutcome,
    Verdict,
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


class RunReport(models.Model):
    """The post-migration reconciliation report of one run (accounting, checks, key diffs).

        A rollback of the run (or of a later run whose chain rolls this one back) supersedes it in
        the rollback request's transaction: verdict "superseded", the verdict it had kept in
        ``superseded_verdict``, the figures in ``data`` kept as history. A report attempt cancelled
        by a rollback never replaces a report with figures: it is added to ``attempts``. A complete
    report stored anew keeps the one it replaced in ``history`` (report_history)."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="report")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    data = models.JSONField(default=dict)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        Rollback, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    superseded_reason = models.CharField(max_length=255, blank=True)
    superseded_verdict = models.CharField(
        max_length=10, choices=Verdict.choices, blank=True, help_text="The verdict it had."
    )
    attempts = models.JSONField(
        default=list, blank=True, help_text="Report attempts cancelled by a rollback, oldest first."
    )
    history = models.JSONField(
        default=list,
        blank=True,
        help_text="The reports this one replaced (verdict, when, why, who asked), oldest first; "
        "the last 20.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(verdict="superseded", superseded_at__isnull=False)
                    & ~Q(superseded_verdict="")
                    & ~Q(superseded_reason="")
                )
                | (
                    ~Q(verdict="superseded")
                    & Q(superseded_at__isnull=True, superseded_verdict="", superseded_reason="")
                ),
                name="report_superseded_says_when_why_and_what",
                violation_error_message=(
                    "A superseded report records when, why and the verdict it had; "
                    "no other report does."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"report of {self.run}: {self.verdict}"

    @property
    def passes(self) -> bool:
        """Pass or pass with warnings, and not superseded or cancelled: what a gate counts."""
        return self.verdict in PASSING_VERDICTS


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
