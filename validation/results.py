"""A validation rule's outcome as a ValidationResult (unsaved): shared by pre-validation and
the post-run report."""

from __future__ import annotations

from runs.models import Run

from .checks import Outcome
from .enums import ResultStatus, Severity
from .models import ValidationResult, ValidationRule


def _status(rule: ValidationRule, ok: bool) -> str:
    if ok:
        return ResultStatus.PASSED
    return ResultStatus.FAILED if rule.severity == Severity.BLOCKING else ResultStatus.WARNING


def rule_result(rule: ValidationRule, run: Run | None, outcome: Outcome) -> ValidationResult:
    """A rule's outcome as an unsaved result (passed, or failed/warning by its severity)."""
    return ValidationResult(
        rule=rule,
        run=run,
        status=_status(rule, outcome.ok),
        expected=outcome.expected[:255],
        observed=outcome.observed[:255],
        details=outcome.details,
    )


def rule_error(rule: ValidationRule, run: Run | None, exc: Exception) -> ValidationResult:
    """A rule that could not be checked, as an unsaved result with status error."""
    return ValidationResult(
        rule=rule,
        run=run,
        status=ResultStatus.ERROR,
        observed=str(exc)[:255],
        details={"error": str(exc)},
    )
