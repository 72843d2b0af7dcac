"""Extension points of the run lifecycle, filled by other apps (validation, notifications).

A hook is a plain function registered at app start (``AppConfig.ready``):
- ``before_run(run) -> str | None``: called after the run is planned and before any batch is
  queued; returning a message stops the run (status failed) before anything is written.
- ``after_run(run) -> None``: called once a run has ended (succeeded, failed, cancelled or
  rolled back); errors are logged on the run, never raised. Steps registered with
  ``late=True`` (alerts) run after the others (reconciliation), so they can report its verdict.
- ``after_queue_work(run, who) -> None``: called after queue work (re-processing failed
  records) wrote to a finished run's target; errors are logged on the run, never raised.
- ``approved_versions(plan, valid) -> QuerySet[PlanVersion]``: the production gate's one way
  in: the plan's versions signed off (``valid``: and not voided since). With no provider
  registered nothing is signed off, so the gate stays shut.
- ``run_verdict(run) -> str | None``: pass / warn / fail (or cancelled / superseded) of the
  run's reconciliation report.
- ``rollback_started(rollback) -> None``: called inside the rollback request's transaction,
  with the rollback's run and its chain locked; an error undoes the request (a report that a
  rollback makes untrue must never keep its verdict).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db.models import QuerySet

from mappings.models import Plan, PlanVersion
from runs.enums import LogLevel
from runs.models import Rollback, Run

from .logging import run_log

logger = logging.getLogger(__name__)
BEFORE_RUN: list[Callable[[Run], str | None]] = []
AFTER_RUN: list[Callable[[Run], None]] = []
AFTER_RUN_LATE: list[Callable[[Run], None]] = []
AFTER_QUEUE_WORK: list[Callable[[Run, str], None]] = []
APPROVALS: list[Callable[..., QuerySet[PlanVersion]]] = []
VERDICTS: list[Callable[[Run], str | None]] = []
ROLLBACK_STARTED: list[Callable[[Rollback], None]] = []


def register_before_run(fn: Callable[[Run], str | None]) -> None:
    """Add a check that may stop a run before its first batch (idempotent)."""
    if fn not in BEFORE_RUN:
        BEFORE_RUN.append(fn)


def register_after_run(fn: Callable[[Run], None], *, late: bool = False) -> None:
    """Add a step that runs when a run has ended (idempotent); ``late`` steps run last."""
    steps = AFTER_RUN_LATE if late else AFTER_RUN
    if fn not in steps:
        steps.append(fn)


def before_run(run: Run) -> str | None:
    """The first blocking message of the registered checks, else None."""
    for fn in BEFORE_RUN:
        message = fn(run)
        if message:
            return message
    return None


def after_run(run: Run) -> None:
    """Call every after-run step; failures are logged on the run and swallowed."""
    for fn in [*AFTER_RUN, *AFTER_RUN_LATE]:
        try:
            fn(run)
        except Exception as exc:  # noqa: BLE001 - a follow-up step must not undo the run's result
            logger.exception("after-run hook %s failed", fn)
            run_log(run, f"After-run step {fn.__name__} failed: {exc}", LogLevel.ERROR)


def register_after_queue_work(fn: Callable[[Run, str], None]) -> None:
    """Add a step that runs after queue work touched a run (idempotent)."""
    if fn not in AFTER_QUEUE_WORK:
        AFTER_QUEUE_WORK.append(fn)


def after_queue_work(run: Run, who: str) -> None:
    """Call every after-queue-work step; failures are logged on the run and swallowed."""
    for fn in AFTER_QUEUE_WORK:
        try:
            fn(run, who)
        except Exception as exc:  # noqa: BLE001 - the queue work itself stands
            logger.exception("after-queue-work hook %s failed", fn)
            run_log(run, f"After-queue-work step {fn.__name__} failed: {exc}", LogLevel.ERROR)


def register_approvals(fn: Callable[..., QuerySet[PlanVersion]]) -> None:
    """Set the provider of signed-off versions (``fn(*, plan, valid)``); the last one counts."""
    APPROVALS[:] = [fn]


def approved_versions(*, plan: Plan, valid: bool = True) -> QuerySet[PlanVersion]:
    """The plan's signed-off versions (``valid``: not voided since); none without a provider.
    Read-only."""
    if not APPROVALS:
        return PlanVersion.objects.none()
    return APPROVALS[0](plan=plan, valid=valid)


def register_run_verdict(fn: Callable[[Run], str | None]) -> None:
    """Set the provider of a run's reconciliation verdict; the last one counts."""
    VERDICTS[:] = [fn]


def run_verdict(run: Run) -> str | None:
    """pass / warn / fail / cancelled / superseded of the run's reconciliation report; None
    without one. Read-only."""
    return VERDICTS[0](run) if VERDICTS else None


def register_rollback_started(fn: Callable[[Rollback], None]) -> None:
    """Add a step that runs in a rollback request's transaction (idempotent)."""
    if fn not in ROLLBACK_STARTED:
        ROLLBACK_STARTED.append(fn)


def rollback_started(rollback: Rollback) -> None:
    """Call every rollback-started step, in the request's transaction; errors are raised."""
    for fn in ROLLBACK_STARTED:
        fn(rollback)
