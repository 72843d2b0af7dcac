"""The post-run report: a finished load/delta run reconciled (accounting, key diffs, post
checks) and stored with its verdict; cancelled when the run is being rolled back
(``report_cancel``)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from runs.models import Run
from runs.services.state import run_entities

from .enums import ResultStatus, Severity, ValidationPhase, Verdict
from .models import RunReport, ValidationResult
from .report_cancel import (
    ReportCancelled,
    ReportWatch,
    report_cancelled_record,
    report_store_allowed,
    report_superseded,
    report_watch,
)
from .report_history import SYSTEM, report_store
from .results import rule_error, rule_result

if TYPE_CHECKING:
    from . import reconciliation as rec

logger = logging.getLogger(__name__)


def _post_results(ctx: rec.RunContext, run: Run, diffs: dict[str, dict]) -> list:
    from . import reconciliation as rec
    from .reconciliation.checks import AGGREGATE_KINDS

    names = {e.name: e for e in run_entities(run)}
    rules = run.plan.validation_rules.filter(phase=ValidationPhase.POST, enabled=True)
    aggregated = set(rules.filter(kind__in=AGGREGATE_KINDS).values_list("entity", flat=True))
    # the target's aggregates beside the expected side, not after a sample check's wait
    rec.aggregates_first(ctx, [e for n, e in names.items() if n in aggregated])
    results = []
    for rule in rules:
        if rule.entity not in names:
            continue
        ctx.check("post checks")
        try:
            outcome = rec.post_check(
                ctx,
                kind=rule.kind,
                params=rule.params,
                column=rule.column,
                entity=names[rule.entity],
                diffs=diffs,
            )
            results.append(rule_result(rule, run, outcome))
        except ReportCancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken rule is reported, not raised
            logger.exception("post check %s failed", rule)
            results.append(rule_error(rule, run, exc))
    return results


def _verdict(accounting: list[dict], diffs: dict[str, dict], results: list) -> str:
    blocking_bad = any(
        r.status in (ResultStatus.FAILED, ResultStatus.ERROR)
        and r.rule.severity == Severity.BLOCKING
        for r in results
    )
    if blocking_bad or not all(a["balanced"] for a in accounting):
        return Verdict.FAIL
    if any(not d.get("clean", True) for d in diffs.values()):
        return Verdict.FAIL
    return Verdict.WARN if any(r.status != ResultStatus.PASSED for r in results) else Verdict.PASS


def _diffs(ctx: rec.RunContext, run: Run) -> dict[str, dict]:
    from . import reconciliation as rec
    from .keydiff import key_diff_report

    diffs: dict[str, dict] = {}
    for entity in run_entities(run):
        ctx.check("entities diffed")
        started = time.monotonic()
        diff = rec.key_diff(ctx, entity)
        diffs[entity.name] = key_diff_report(ctx, entity, diff, time.monotonic() - started)
    return diffs


def run_report_build(
    *, run: Run, reason: str = "after the run", requested_by: str = SYSTEM
) -> RunReport:
    """Reconcile a finished load/delta run and store its report and post-check results,
    replacing earlier ones (idempotent; the replaced report goes to its history); the report
    records when, why (``reason``), who asked (``requested_by``) and from which state of the
    run it was computed. A run being rolled back gets none: the report does
    not start, or stops at its next checkpoint (report_cancel), and is recorded as cancelled,
    without a verdict of pass, warn or fail. Raises on connection errors."""
    started = time.monotonic()
    run.refresh_from_db()
    with report_watch(run_id=run.pk) as watch:
        superseded = report_superseded(run_id=run.pk)
        if superseded is None:
            try:
                return _report_build(run, reason, requested_by, watch, started)
            except Exception:
                if not watch.stopped.is_set():
                    raise
            superseded = watch.message
    return report_cancelled_record(
        run=run,
        message=superseded,
        reason=reason,
        progress=watch.progress,
        started=started,
        requested_by=requested_by,
    )


def _report_build(
    run: Run, reason: str, requested_by: str, watch: ReportWatch, started: float
) -> RunReport:
    from . import reconciliation as rec  # pandas: imported where used, not at app start
    from .keydiff import state_of
    from .prefetch import expected_collect, expected_start

    state = state_of(run)
    ctx = rec.RunContext(run=run, watch=watch)
    accounting = rec.accounting(run)
    # the expected side (source re-read through the run's rules) in a thread meanwhile
    # (each check queries the target first, then waits for it: those queries overlap it too)
    ctx.pending = expected_start(ctx, run_entities(run))
    try:
        diffs = _diffs(ctx, run)
        # the app database's failure tallies are read while the expected side still runs
        # (they were read after every check: ~1.9 s at 10 M rows on the report's tail)
        failures = {by: rec.failures_by(run, by) for by in ("category", "rule", "field")}
        results = _post_results(ctx, run, diffs)
    finally:
        expected_collect(ctx)  # the thread has ended before the report is stored
        ctx.close()
    verdict = _verdict(accounting, diffs, results)
    data = {
        "accounting": accounting,
        "key_diffs": diffs,
        "failures_by_category": failures["category"],
        "failures_by_rule": failures["rule"],
        "failures_by_field": failures["field"],
        "computed": {
            "at": timezone.now().isoformat(),
            "reason": reason,
            "requested_by": requested_by,
            "state": state,
        },
    }
    with transaction.atomic():
        # the run's row, locked as a rollback request locks it: a rollback either began before
        # (no verdict is stored) or begins after this report of the run as it was
        report_store_allowed(run=run, watch=watch)
        ValidationResult.objects.filter(run=run, rule__phase=ValidationPhase.POST).delete()
        ValidationResult.objects.bulk_create(results)
        # a report of the run as it is now: the newest truth; the one it replaces: history
        report = report_store(
            run=run,
            verdict=verdict,
            data=data,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
    return report
