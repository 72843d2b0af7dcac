"""Reads of the validation app: report context, sign-off page data, the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet

from mappings.models import Plan
from runs.enums import RunMode
from runs.models import Run
from runs.threshold import run_threshold_breach, run_threshold_clear

from . import charts
from .enums import Verdict
from .models import AuditEvent, RunReport, SignOff, ValidationResult
from .signoff import uat_coverage

# a report whose run was rolled back (superseded, or an attempt the rollback cancelled): every
# status it shows is history, never a live pass
HISTORY_VERDICTS = (Verdict.SUPERSEDED, Verdict.CANCELLED)
HISTORY_NOTE = "(before the rollback)"


def history_status(status: str, history: bool) -> str:
    """A check's status as a report shows it: under a report its rollback made history,
    "passed (before the rollback)". Pure."""
    return f"{status} {HISTORY_NOTE}" if history else status


def run_verdict(run: Run) -> str | None:
    """pass / warn / fail / cancelled / superseded of the run's report, None without one."""
    report = getattr(run, "report", None) if hasattr(run, "report") else None
    return report.verdict if report else None


def report_context(run: Run) -> dict[str, Any]:
    """Everything the report page and its exports show for a run."""
    report = (
        RunReport.objects.filter(run=run)
        .select_related("superseded_by__run", "superseded_by__requested_by")
        .first()
    )
    data = report.data if report else {}
    results = list(
        ValidationResult.objects.filter(run=run)
        .select_related("rule")
        .order_by("rule__phase", "rule__entity", "rule__name")
    )
    accounting = data.get("accounting", [])
    computed = data.get("computed")
    state = (computed or {}).get("state", {})
    return {
        "computed": computed,
        # the run's counters moved since the report was computed (queue work, a late batch)
        "stale": bool(state)
        and (state.get("loaded"), state.get("failed")) != (run.loaded, run.failed),
        "run": run,
        "report": report,
        # the run was rolled back: every status below is shown as from before the rollback
        "from_before_rollback": report is not None and report.verdict in HISTORY_VERDICTS,
        "data": data,
        "results": results,
        "accounting": accounting,
        "key_diffs": data.get("key_diffs", {}),
        "chart_accounting": charts.accounting_chart(accounting),
        "chart_categories": charts.bar_chart(
            data.get("failures_by_category", []), title="Failures by category"
        ),
        "chart_rules": charts.bar_chart(
            data.get("failures_by_rule", []), title="Failures per rule"
        ),
        "uat": uat_coverage(plan=run.plan, run=run),
        "would_abort": run_threshold_breach(run),
        "would_go_through": run_threshold_clear(run),
        # A finished load/delta run whose reconciliation the worker is still computing.
        "pending": report is None
        and run.mode != RunMode.DRY_RUN
        and run.status in ("succeeded", "failed")
        and run.batches.exists(),
    }


def plan_load_runs(plan: Plan) -> QuerySet[Run]:
    """The plan's load/delta runs, newest first, with version and report."""
    return (
        Run.objects.filter(plan=plan)
        .exclude(mode=RunMode.DRY_RUN)
        .select_related("version", "target", "report")
        .order_by("-created_at")
    )


def signoff_history(plan: Plan) -> QuerySet[SignOff]:
    """The plan's sign-offs, newest first."""
    return plan.signoffs.select_related("version", "approver", "run").order_by("-created_at")


def audit_events(
    *,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    text: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[AuditEvent]:
    """Audit events filtered (all filters optional), newest first. One query."""
    qs = AuditEvent.objects.all()
    if actor:
        qs = qs.filter(actor_name__iexact=actor)
    if action:
        qs = qs.filter(action=action)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if text:
        qs = qs.filter(
            Q(object_repr__icontains=text)
            | Q(object_id__icontains=text)
            | Q(actor_name__icontains=text)
        )
    if date_from:
        qs = qs.filter(at__date__gte=date_from)
    if date_to:
        qs = qs.filter(at__date__lte=date_to)
    return qs.order_by("-at", "-id")


def audit_filter_choices() -> dict[str, list[str]]:
    """Distinct actors and object types for the filter form."""
    return {
        "actors": sorted(
            set(
                AuditEvent.objects.exclude(actor_name="")
                .values_list("actor_name", flat=True)
                .distinct()
            )
        ),
        "types": sorted(
            set(
                AuditEvent.objects.exclude(object_type="")
                .values_list("object_type", flat=True)
                .distinct()
            )
        ),
    }
