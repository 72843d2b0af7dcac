"""Shared CLI helpers: the system checks a run command runs, follow a run's progress with a
bar."""

from __future__ import annotations

import time

from django.core.checks.registry import Tags, registry
from tqdm import tqdm

from runs.enums import FINISHED_RUN_STATUSES, RunStatus
from runs.models import COUNTERS, Run

# The columns a poll reads: what the bar and the closing line show (not the run's JSON
# columns, decoded on every poll for nothing).
FOLLOWED = ("status", "error", "source_total", *COUNTERS)

# The checks that concern only the web front: the URL conf's (it imports every view, form,
# serializer and API module: ~1.3 CPU-s, more than half of ``run_plan``'s start) and the
# templates'. Neither can affect a run, a rollback or their workers.
WEB_ONLY_CHECKS = frozenset({Tags.urls, Tags.templates})


class OfflineChecks:
    """A command mixin: before it starts, the system checks of every tag but the web front's
    (``WEB_ONLY_CHECKS``; Django's default runs them all). An error of a model, database,
    settings or other check still stops the command with Django's own message."""

    @property
    def requires_system_checks(self) -> list[str]:
        return sorted(registry.tags_available() - WEB_ONLY_CHECKS)


def follow(run: Run, *, stdout, poll: float = 0.5, timeout: float | None = None) -> Run:
    """Poll the run row (one query of ``FOLLOWED`` each), drawing a progress bar of accounted
    rows, until it ends."""
    started = time.monotonic()
    with tqdm(total=max(run.source_total, 1), unit="row", file=stdout, dynamic_ncols=True) as bar:
        while True:
            run.refresh_from_db(fields=FOLLOWED)
            if run.source_total and bar.total != run.source_total:
                bar.total = run.source_total
            done = run.loaded + run.failed + run.filtered + run.duplicates
            bar.n = done
            bar.set_postfix_str(f"{run.status} · loaded {run.loaded:,} · failed {run.failed:,}")
            bar.refresh()
            if run.status in FINISHED_RUN_STATUSES and run.status != RunStatus.ROLLING_BACK:
                return run
            if timeout is not None and time.monotonic() - started > timeout:
                return run
            time.sleep(poll)
