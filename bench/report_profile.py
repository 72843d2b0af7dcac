"""Where the app's post-run report spends its time, on a mid-size demo (not a test, no limit).

    MEASURE_ROWS=100000 TEST_PG_PORT=… TEST_REDIS_PORT=… TEST_MYSQL_PORT=… \\
        bash scripts/test.sh bench/report_profile.py -q -s -p no:cacheprovider

(pytest collects this file only when it is named: it reuses the suite's private servers and
fixtures). Builds the legacy CRM with MEASURE_ROWS customers, loads the bench's plan (the demo
reduced to accounts, batches 20,000) inline, then times ``run_report_build`` MEASURE_REPEAT
times in each mode under cProfile ("threaded": as now; "inline": the expected side computed after
the key diffs, as before validation/prefetch.py) and prints the run's and each report's seconds
and the top functions of the last, inline one (so the expected side is in the profile).
"""

from __future__ import annotations

import cProfile
import datetime as dt
import os
import pstats
import time

import pytest

from tests.conftest import *  # noqa: F403 - the suite's database setup
from tests.runs.conftest import *  # noqa: F403 - demo target, eager Celery
from tests.runs.conftest import _pg_system
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
ROWS = int(os.environ.get("MEASURE_ROWS", "100000"))
REPEAT = int(os.environ.get("MEASURE_REPEAT", "2"))


@pytest.fixture
def sized_source():
    from mappings.demo import legacy_crm

    with pg.throwaway_database("measure_src") as name:
        started = time.monotonic()
        legacy_crm.build_source(pg.url_for(name), rows=ROWS, seed=7)
        print(f"\nsource of {ROWS:,} customers built in {time.monotonic() - started:.1f} s")
        yield name


def bench_plan(source_db: str, target_db: str):
    """The bench's plan (the demo reduced to accounts, batches of 20,000) between the two
    databases, as bench/app_setup.py installs it."""
    from django.contrib.auth.models import User

    from mappings.demo import legacy_crm
    from mappings.demo_plan import demo_plan_install

    plan, _ = demo_plan_install(
        source=_pg_system("Legacy CRM", source_db, "dev", "source"),
        target=_pg_system("New CRM (UAT)", target_db, "uat", "target"),
        owner=User.objects.create(username="plan-owner"),
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    plan.entities.exclude(name="accounts").delete()  # as bench/app_setup.py
    plan.batch_size = 20_000
    plan.save()
    return plan


def test_report_profile(eager_celery, sized_source, demo_target_db, monkeypatch):
    from runs.services import hooks, run_create
    from validation import services

    plan = bench_plan(sized_source, demo_target_db)
    # the report is built below, timed, not by the after-run hook
    steps = [f for f in hooks.AFTER_RUN if f is not services.run_reconcile_after]
    monkeypatch.setattr(hooks, "AFTER_RUN", steps)
    started = time.monotonic()
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    print(
        f"run {run.status}: {run.loaded:,} loaded, {run.failed:,} failed, "
        f"{time.monotonic() - started:.1f} s (inline, one process)"
    )
    with open("/proc/loadavg") as f:
        print("load average", f.read().split()[:3])
    from validation import prefetch

    threaded = prefetch.expected_start
    for i in range(REPEAT):
        # "inline": the expected side computed by the first check that needs it, after the key
        # diffs (as before the prefetch); "threaded": the report as it is built now
        for mode in ("threaded", "inline"):
            start = threaded if mode == "threaded" else (lambda ctx, entities: None)
            monkeypatch.setattr(prefetch, "expected_start", start)
            profile = cProfile.Profile()  # the main thread only (not the prefetch thread)
            started = time.monotonic()
            profile.enable()
            report = services.run_report_build(run=run)
            profile.disable()
            diff = report.data["key_diffs"]["accounts"]["seconds"]
            print(
                f"report {i + 1} {mode}: {time.monotonic() - started:.2f} s, "
                f"verdict {report.verdict}, key diff {diff} s"
            )
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
