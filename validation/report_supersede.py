"""A rollback supersedes the reports of the runs it undoes.

Once a rollback starts on a run (or on a later run whose chain rolls this run back next), the
target no longer holds what the run's report proved. The rollback request supersedes the
report in its own transaction (the ``rollback_started`` hook of ``runs``), with the run's row
locked: the figures stay as history, the verdict becomes "superseded" (the verdict it had is
kept beside it) and no gate counts it as a pass again. A later complete report of the run
(once no rollback has it any more) replaces it.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from runs.enums import LogLevel
from runs.models import Rollback
from runs.services.logging import run_log

from .enums import Verdict
from .models import RunReport

COMPLETED = (Verdict.PASS, Verdict.WARN, Verdict.FAIL)  # a report with figures and a verdict
# the fields of a report stored anew (a complete report of the run as it is now)
NOT_SUPERSEDED = {
    "superseded_at": None,
    "superseded_by": None,
    "superseded_reason": "",
    "superseded_verdict": "",
    "attempts": [],
}


def superseded_message(*, rolled_back: int, run_id: int) -> str:
    """Why the report of ``run_id`` no longer holds, a rollback of run ``rolled_back`` started."""
    if rolled_back == run_id:
        return f"superseded by rollback of run #{run_id}"
    return f"superseded by rollback of run #{rolled_back}, which rolls back run #{run_id} next"


def reports_supersede(rollback: Rollback) -> int:
    """rollback_started hook: supersede the completed reports of the rollback's run and its
    chain, figures kept (the rollback request's transaction; the runs' rows are locked by it).
    Idempotent. Returns how many it superseded."""
    return sum(
        report_supersede(run_id=run_id, rollback=rollback)
        for run_id in [rollback.run_id, *rollback.chain]
    )


def report_supersede(*, run_id: int, rollback: Rollback) -> int:
    """Supersede the run's completed report (pass, warn, fail) by ``rollback``, figures kept,
    and say so on the run's log. Idempotent: a superseded or cancelled report stays as it is.
    Returns 1 when it superseded one, else 0."""
    completed = RunReport.objects.filter(run_id=run_id, verdict__in=COMPLETED)
    verdict = completed.values_list("verdict", flat=True).first()
    if verdict is None:
        return 0
    message = superseded_message(rolled_back=rollback.run_id, run_id=run_id)
    superseded = completed.update(  # update(): the report's own time (auto_now) stays
        verdict=Verdict.SUPERSEDED,
        superseded_verdict=F("verdict"),
        superseded_at=timezone.now(),
        superseded_by=rollback,
        superseded_reason=message,
    )
    run_log(
        run_id,
        f"Report ({Verdict(verdict).label.lower()}) {message}: its figures are kept as "
        "history; its verdict no longer counts.",
        LogLevel.WARNING,
    )
    return superseded
