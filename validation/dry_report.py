"""The report of a dry run: nothing was written, so nothing is reconciled against the target;
the verdict says whether a load of the same version would go through (the CI gate reads it:
docs/ci-pipeline.sh)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from runs.enums import RunStatus
from runs.models import Run
from runs.services.state import run_snapshot
from runs.threshold import run_threshold_breach, run_threshold_clear

from .enums import ResultStatus, Verdict
from .models import RunReport, ValidationResult
from .report_history import SYSTEM, report_store


def dry_run_verdict(*, run: Run, accounting: list[dict]) -> tuple[str, list[str]]:
    """fail / warn / pass of a finished dry run and the reasons for a fail (read-only): fail
    when the run failed, when its failure rate passed the plan's failure threshold after some
    batch (a load would have aborted there: runs.threshold), when a blocking pre-check did
    not pass or when the source rows do not add up; warn when some rows failed or a warning
    check did not pass."""
    reasons = []
    if run.status == RunStatus.FAILED:
        reasons.append(f"the dry run failed: {run.error or 'see the run page'}")
    breach = run_threshold_breach(run)  # checked after each batch, as a load does
    if breach is not None:
        reasons.append(breach.message)
    checks = list(ValidationResult.objects.filter(run=run).select_related("rule"))
    blocking = [
        r
        for r in checks
        if r.status in (ResultStatus.FAILED, ResultStatus.ERROR) and r.rule.severity == "blocking"
    ]
    reasons += [
        f"check “{r.rule.name}” {r.status}: expected {r.expected or '—'}, observed "
        f"{r.observed or '—'}"
        for r in blocking
    ]
    unbalanced = [a["entity"] for a in accounting if not a["balanced"]]
    if unbalanced:
        reasons.append(f"source rows do not add up for {', '.join(unbalanced)}")
    if reasons:
        return Verdict.FAIL, reasons
    unclean = run.failed or any(r.status != ResultStatus.PASSED for r in checks)
    return (Verdict.WARN if unclean else Verdict.PASS), []


def dry_run_report_build(*, run: Run) -> RunReport:
    """Store the report of a finished dry run (accounting, failures by category / rule /
        field, verdict with its reasons), replacing an earlier one (kept in its history).
    Idempotent, transactional."""
    from . import reconciliation as rec  # pandas: imported where used, not at app start
    from .keydiff import state_of

    run.refresh_from_db()
    accounting = rec.accounting(run)
    verdict, reasons = dry_run_verdict(run=run, accounting=accounting)
    breach = run_threshold_breach(run)
    clear = run_threshold_clear(run)
    data = {
        "accounting": accounting,
        "dry_run": {
            "reasons": reasons,
            "failed": run.failed,
            "extracted": run.extracted,
            "threshold_pct": float(run_snapshot(run).failure_threshold_pct),
            "threshold_breach": breach.as_dict() if breach else None,
            "threshold_clear": clear.as_dict() if clear else None,
        },
        "failures_by_category": rec.failures_by(run, "category"),
        "failures_by_rule": rec.failures_by(run, "rule"),
        "failures_by_field": rec.failures_by(run, "field"),
        "computed": {
            "at": timezone.now().isoformat(),
            "reason": "after the dry run",
            "requested_by": SYSTEM,
            "state": state_of(run),  # as a reconciled report: status, batches, open failures
        },
    }
    with transaction.atomic():  # an earlier report of the dry run: kept in the history
        return report_store(run=run, verdict=verdict, data=data, duration_ms=0)
