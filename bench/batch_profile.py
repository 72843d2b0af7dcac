"""Where a worker's CPU per batch goes, in one process (not a test, no limit).

    MEASURE_ROWS=200000 TEST_PG_PORT=… TEST_REDIS_PORT=… TEST_MYSQL_PORT=… \\
        bash scripts/test.sh bench/batch_profile.py -q -s -p no:cacheprovider

(pytest collects this file only when it is named: it reuses the suite's private servers and
fixtures). Builds the legacy CRM with MEASURE_ROWS customers, loads the bench's plan (the demo
reduced to accounts, batches 20,000; both as bench/report_profile.py) inline with eager Celery,
and profiles each batch's engine (``execute_batch``) and its recording (``outcome_record``) under
cProfile, as a worker runs them
(automatic collection paused). Prints the CPU (``time.process_time``) per batch of each part,
unprofiled runs first (MEASURE_PLAIN runs, default 2), then one profiled run's top functions.
MEASURE_PSTATS=path also dumps the profile for later reading; MEASURE_CPROFILE=0 profiles no
run (for a sampling profiler attached from outside: cProfile triples the CPU of per-value code).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import time

import pytest

from bench import report_profile
from tests.conftest import *  # noqa: F403 - the suite's database setup
from tests.runs.conftest import *  # noqa: F403 - demo target, eager Celery
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
PLAIN = int(os.environ.get("MEASURE_PLAIN", "2"))
CPROFILE = os.environ.get("MEASURE_CPROFILE", "1") == "1"  # 0: sample with py-spy instead


def _timed(monkeypatch, profile: cProfile.Profile | None, cpu: dict[str, list[float]]) -> None:
    """Wrap the batch's engine and its recording: CPU per call, under ``profile`` if given."""
    from runs.services import batches

    def wrap(name: str, fn):
        def timed(*args, **kwargs):
            started = time.process_time()
            if profile is not None:
                profile.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                if profile is not None:
                    profile.disable()
                cpu.setdefault(name, []).append(time.process_time() - started)

        return timed

    monkeypatch.setattr(batches, "_engine", wrap("engine", batches._engine))
    monkeypatch.setattr(batches, "outcome_record", wrap("record", batches.outcome_record))
    if os.environ.get("MEASURE_DUMP"):  # a batch's outcome, pickled, for micro-benchmarks
        import pickle

        record = batches.outcome_record

        def dumped(**kwargs):
            with open(os.environ["MEASURE_DUMP"], "wb") as f:
                pickle.dump(kwargs["outcome"], f)
            return record(**kwargs)

        monkeypatch.setattr(batches, "outcome_record", wrap("record", dumped))


def _reset_target(dbname: str) -> None:
    """Empty new-CRM tables and no ledger (bench.pipeline.reset_target): a first run again."""
    import psycopg2

    from mappings.demo import legacy_crm

    legacy_crm.build_target(pg.url_for(dbname), replace=True)
    with psycopg2.connect(pg.url_for(dbname)) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS mp_ledger CASCADE")
    conn.close()


sized_source = report_profile.sized_source  # the fixture: MEASURE_ROWS customers


def test_batch_profile(eager_celery, sized_source, demo_target_db, monkeypatch):
    import runs
    from runs.connections import connectors_close
    from runs.services import hooks, run_create

    plan = report_profile.bench_plan(sized_source, demo_target_db)
    monkeypatch.setattr(hooks, "AFTER_RUN", [])  # the batches only, not the report
    print(f"code: {runs.__file__}")
    profile = cProfile.Profile(time.process_time)  # CPU, not the waits on the servers
    for i in range(PLAIN + 1):
        profiled = CPROFILE and i == PLAIN
        cpu: dict[str, list[float]] = {}
        with monkeypatch.context() as patch:
            _timed(patch, profile if profiled else None, cpu)
            _reset_target(demo_target_db)
            connectors_close()
            started = time.monotonic()
            run = run_create(plan=plan, user=None, mode="load")
        run.refresh_from_db()
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        parts = ", ".join(
            f"{name} {statistics.median(ts) * 1000:.1f} ms (min {min(ts) * 1000:.1f})"
            for name, ts in cpu.items()
        )
        print(
            f"run {i + 1}{' (profiled)' if profiled else ''}: {run.status}, {run.loaded:,} "
            f"loaded, {run.failed:,} failed, {time.monotonic() - started:.1f} s; per batch "
            f"median {parts}; load {load}"
        )
    if not CPROFILE:
        return
    stats = pstats.Stats(profile)
    if os.environ.get("MEASURE_PSTATS"):
        stats.dump_stats(os.environ["MEASURE_PSTATS"])
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
