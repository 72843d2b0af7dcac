"""A run's report stops once the run is being rolled back.

The report reads source and target for minutes on a large run; a rollback started meanwhile
removes what it reads, so its verdict would describe data that is going away. ``ReportWatch``
polls the run's status in a thread of its own (the run's row is the flag: a rollback request
sets it to rolling back in its transaction) and, once a rollback has started, cancels the
statement the report's connectors are running and makes the report's next checkpoint raise
``ReportCancelled`` (before every key-diff statement, between entities, post checks and the
expected side's key ranges). The attempt is then recorded as cancelled, never with a verdict;
an earlier report with figures stays, superseded (report_supersede), with the attempt beside it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from runs.enums import LogLevel, RollbackStatus, RunStatus
from runs.models import Rollback, Run
from runs.services.logging import run_log

from .enums import ValidationPhase, Verdict
from .models import RunReport, ValidationResult
from .report_supersede import COMPLETED, report_supersede, superseded_message

ROLLED = (RunStatus.ROLLING_BACK, RunStatus.ROLLED_BACK)
POLL = 0.5  # seconds between two looks at the run's status


class ReportCancelled(Exception):  # noqa: N818 - a stop, not an error of the report
    """The report's run is being rolled back: the report stops, recorded as cancelled."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def report_superseded(*, run_id: int) -> str | None:
    """Why no report may be computed for the run now ("superseded by rollback of run #N"),
    or None: the run is rolling back or rolled back, or a running rollback has it in its
    chain (its batches are being undone too). Read-only, two small queries at most."""
    status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
    if status in ROLLED:
        return superseded_message(rolled_back=run_id, run_id=run_id)
    chained = _chain_rollback(run_id)
    return superseded_message(rolled_back=chained.run_id, run_id=run_id) if chained else None


def _chain_rollback(run_id: int) -> Rollback | None:
    # running rollbacks are few; their chains are read here (SQLite has no JSON containment)
    for rollback in Rollback.objects.filter(status=RollbackStatus.RUNNING).order_by("pk"):
        if run_id in rollback.chain:
            return rollback
    return None


def _superseding_rollback(run: Run) -> Rollback | None:
    """The rollback that makes the run's report untrue: its own latest, or a running one
    whose chain holds it."""
    if run.status in ROLLED:
        return Rollback.objects.filter(run=run).order_by("-started_at", "-pk").first()
    return _chain_rollback(run.pk)


class ReportWatch(threading.Thread):
    """Watches one run for a rollback while its report is computed (see the module)."""

    def __init__(self, run_id: int) -> None:
        super().__init__(daemon=True, name=f"report-{run_id}-watch")
        self.run_id = run_id
        self.message = ""
        self.stopped = threading.Event()  # a rollback started: the report must stop
        self.progress: Counter[str] = Counter()  # work done, recorded with a cancelled report
        self._end = threading.Event()
        self._lock = threading.Lock()
        self._connectors: list[Any] = []

    def watch(self, connector: Any) -> Any:
        """Register a connector whose running statement is cancelled on a rollback."""
        with self._lock:
            self._connectors.append(connector)
        return connector

    def check(self, what: str = "") -> None:
        """A checkpoint: raises ReportCancelled once a rollback started; else counts ``what``."""
        if self.stopped.is_set():
            raise ReportCancelled(self.message)
        if what:
            self.progress[what] += 1

    def run(self) -> None:
        try:
            while not self._end.wait(POLL):
                message = report_superseded(run_id=self.run_id)
                if message:
                    self.cancel(message)
                    run_log(self.run_id, f"Report stopping: {message}.", LogLevel.WARNING)
                    return
        finally:
            connection.close()  # this thread's own session

    def cancel(self, message: str) -> None:
        """Flag the report and cancel the statements its connectors run (idempotent)."""
        self.message = message
        self.stopped.set()
        with self._lock:
            connectors = list(self._connectors)
        for connector in connectors:
            cancel = getattr(connector, "cancel", None)  # PostgreSQL's; others stop at checkpoints
            if cancel is not None:
                with contextlib.suppress(Exception):
                    cancel()

    def stop(self) -> None:
        """End the watch (idempotent); after it, nothing is cancelled any more."""
        self._end.set()
        if self.is_alive():
            self.join()


@contextmanager
def report_watch(*, run_id: int) -> Iterator[ReportWatch]:
    """A started ReportWatch for the block, stopped after it."""
    watch = ReportWatch(run_id)
    watch.start()
    try:
        yield watch
    finally:
        watch.stop()


def report_store_allowed(*, run: Run, watch: ReportWatch) -> None:
    """Inside the transaction that stores a report: lock the run's row (as a rollback request
    does) and raise ReportCancelled (the watch flagged) when a rollback has started."""
    list(Run.objects.select_for_update().filter(pk=run.pk).values_list("pk", flat=True))
    message = report_superseded(run_id=run.pk)
    if message:
        watch.cancel(message)
        raise ReportCancelled(message)


def report_cancelled_record(
    *,
    run: Run,
    message: str,
    reason: str,
    progress: Counter[str],
    started: float,
    requested_by: str = "",
) -> RunReport:
    """Record a report attempt cancelled by a rollback, with why and how far it got, and say
    so on the run's log. An earlier report with figures stays (superseded: never a pass next
    to a cancelled attempt), its post-check results with it; the attempt is added to its
    ``attempts``. A run without one gets the attempt as its report (verdict cancelled, no
    figures). Transactional; idempotent."""
    import time

    from .keydiff import state_of

    run.refresh_from_db()
    at = timezone.now().isoformat()
    attempt = {
        "at": at,
        "reason": reason,
        "requested_by": requested_by,
        "message": message,
        "progress": dict(progress),
    }
    with transaction.atomic():
        report = RunReport.objects.select_for_update().filter(run=run).first()
        if report is not None and report.verdict in (*COMPLETED, Verdict.SUPERSEDED):
            rollback = _superseding_rollback(run)
            if report.verdict != Verdict.SUPERSEDED and rollback is not None:
                report_supersede(run_id=run.pk, rollback=rollback)
            RunReport.objects.filter(pk=report.pk).update(attempts=[*report.attempts, attempt])
            report.refresh_from_db()
        else:
            ValidationResult.objects.filter(run=run, rule__phase=ValidationPhase.POST).delete()
            data = {
                "cancelled": {"message": message, "progress": dict(progress)},
                "computed": {
                    "at": at,
                    "reason": reason,
                    "requested_by": requested_by,
                    "state": state_of(run),
                },
            }
            report, _ = RunReport.objects.update_or_create(
                run=run,
                defaults={
                    "verdict": Verdict.CANCELLED,
                    "data": data,
                    "duration_ms": int((time.monotonic() - started) * 1000),
                    "attempts": [*(report.attempts if report else []), attempt],
                },
            )
    run_log(run, f"Report cancelled: {message}.", LogLevel.WARNING)
    return report
