"""Choices for the validation app."""

from django.db import models

from mappings.enums import (  # noqa: F401  (the plan's checks are plan content: mappings)
    PRE_KINDS,
    Severity,
    ValidationKind,
    ValidationPhase,
)
from migration_planner.audit.enums import AuditAction  # noqa: F401  (moved to the base)


class ResultStatus(models.TextChoices):
    PASSED = "passed", "Passed"
    WARNING = "warning", "Warning"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"


class UATOutcome(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    BLOCKED = "blocked", "Blocked"


class SignOffDecision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class CutoverStatus(models.TextChoices):
    OPEN = "open", "Open (checklist in progress)"
    GO = "go", "Go: live on the target"
    NO_GO = "no_go", "No-go"
    ROLLED_BACK = "rolled_back", "Rolled back"


class Verdict(models.TextChoices):
    PASS = "pass", "Pass"
    WARN = "warn", "Pass with warnings"
    FAIL = "fail", "Fail"
    # stopped (its run is being rolled back): no verdict on the data at all
    CANCELLED = "cancelled", "Cancelled"
    # its run was rolled back after it was computed: its figures are kept as history only
    SUPERSEDED = "superseded", "Superseded by a rollback"


# what a gate (cutover, sign-off) may count as a passing report
PASSING_VERDICTS = (Verdict.PASS, Verdict.WARN)
