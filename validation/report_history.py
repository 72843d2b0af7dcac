"""A run's report keeps the reports it replaced.

A report is stored anew whenever the run is reconciled again (on demand, after re-processing,
after a rollback chain stopped before the run); the one it replaces — a fail that later
passes, a pass a rollback superseded — would otherwise be gone. ``report_store`` moves the
replaced report's verdict, when it was computed, why, who asked, and what superseded or
cancelled it into the new one's ``history`` (oldest first, the last HISTORY_KEEP).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from runs.models import Run

from .models import RunReport
from .report_supersede import NOT_SUPERSEDED

HISTORY_KEEP = 20  # replaced reports a report keeps
SYSTEM = "the system"  # who asked for a report nobody asked for (after the run)


def report_history_entry(report: RunReport, *, replaced_by: str) -> dict[str, Any]:
    """What the history keeps of a replaced report (``replaced_by``: why the new one was
    computed). Pure."""
    computed = report.data.get("computed") or {}
    return {
        "verdict": report.verdict,
        "superseded_verdict": report.superseded_verdict,
        "superseded_reason": report.superseded_reason,
        "computed_at": computed.get("at") or report.created_at.isoformat(),
        "reason": computed.get("reason", ""),
        "requested_by": computed.get("requested_by", ""),  # "" : before it was recorded
        "attempts": report.attempts,  # the cancelled attempts beside it
        "replaced_at": timezone.now().isoformat(),
        "replaced_by": replaced_by,
    }


def report_store(*, run: Run, verdict: str, data: dict, duration_ms: int) -> RunReport:
    """Store the run's complete report (not superseded, no cancelled attempts: the newest
    truth), the one it replaces moved into its history. Inside the caller's transaction; locks
    the stored report's row, so two stores keep both in order. Returns the report."""
    old = RunReport.objects.select_for_update().filter(run=run).first()
    history = list(old.history) if old else []
    if old is not None:
        reason = (data.get("computed") or {}).get("reason", "")
        history.append(report_history_entry(old, replaced_by=reason))
    report, _ = RunReport.objects.update_or_create(
        run=run,
        defaults={
            "verdict": verdict,
            "data": data,
            "duration_ms": duration_ms,
            **NOT_SUPERSEDED,
            "history": history[-HISTORY_KEEP:],
        },
    )
    return report
