"""Run log lines (shown live on the run page) mirrored to the Python log."""

from __future__ import annotations

import logging

from runs.enums import LogLevel
from runs.models import Run, RunLog

logger = logging.getLogger("runs")


def run_log(run: Run | int, message: str, level: str = LogLevel.INFO) -> None:
    """Append a line to the run's log; never contains secrets (callers pass plain facts)."""
    run_id = run if isinstance(run, int) else run.pk
    RunLog.objects.create(run_id=run_id, message=message[:2000], level=level)
    logger.log(
        logging.ERROR if level == LogLevel.ERROR else logging.INFO, "run %s: %s", run_id, message
    )
