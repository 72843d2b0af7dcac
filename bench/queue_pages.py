"""Error-queue page timings: the queue page, its text filter and the API page over N failed records.

Run as ``python -m bench.queue_pages --records N [--requests 20]`` with DATABASE_URL pointing at a
migrated app database on PostgreSQL (scripts/bench.sh's run_bench calls it after the pipeline).
With ``--run UUID`` it times the pages over that run's own failed records (the bench: its
largest run's); else it adds one failed run holding N synthetic failed records (COPY, not the
ORM). It times each page
``--requests`` times through Django's test client as a viewer, prints one JSON line with the
p50/p95 of each in milliseconds, and removes what it added. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def _fill(run, count: int) -> None:
    """One ORM record of ``run`` as a template, then ``count - 1`` copies made by the server."""
    from django.db import connection

    from runs.models import FailedRecord

    template = FailedRecord.objects.create(
        run=run,
        entity="accounts",
        source_key="K00000000",
        stage="transform",
        source_row={"Email_Address": "user0@", "State": "S0"},
        transformed_row={"email": "user0@"},
        category="invalid_format",
        field="email",
        rule="email",
        message="'user0@' is not a valid e-mail address",
        errors=[{"field": "email", "message": "bad"}],
    )
    overrides = {
        "uuid": "gen_random_uuid()",
        "source_key": "'K' || lpad(g::text, 8, '0')",
        "entity": "CASE WHEN g %% 3 = 0 THEN 'contacts' ELSE 'accounts' END",
        "category": "CASE WHEN g %% 4 = 0 THEN 'lookup_miss' ELSE 'invalid_format' END",
        "message": "'''user' || g || '@'' is not a valid e-mail address'",
    }
    columns = [f.column for f in FailedRecord._meta.concrete_fields if f.column != "id"]
    select = ", ".join(overrides.get(c, f't."{c}"') for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO runs_failedrecord ({names}) SELECT {select} "  # noqa: S608 - model columns
            "FROM runs_failedrecord t, generate_series(1, %s) g WHERE t.id = %s",
            [count - 1, template.id],
        )
        cursor.execute("ANALYZE runs_failedrecord")


_TABLE_STATS = (
    "SELECT n_live_tup, n_dead_tup, n_mod_since_analyze, n_ins_since_vacuum, last_autovacuum, "
    "last_autoanalyze, last_analyze, autovacuum_count, autoanalyze_count "
    "FROM pg_stat_user_tables WHERE relname = 'runs_failedrecord'"
)
_AUTOVACUUM = (
    "SELECT query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
    "AND state IS DISTINCT FROM 'idle'"
)


def _server(statement: str) -> list[tuple]:
    """Rows of a statistics query on the app database (outside the timed request)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement)
        return [tuple(str(v) if v is not None else None for v in row) for row in cursor.fetchall()]


def _request(client, url: str, params: dict) -> dict:
    """One GET timed: its ms, its statements (count, server round trips' ms, the slowest),
    the machine's busy cores meanwhile and the autovacuum workers seen right after."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.measure import machine_busy_seconds

    busy = machine_busy_seconds()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url, params)
        ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    times = [(float(q["time"]) * 1000, q["sql"]) for q in queries.captured_queries]
    slowest = max(times, default=(0.0, ""))
    return {
        "ms": round(ms, 1),
        "queries": len(times),
        "db_ms": round(sum(t for t, _ in times), 1),
        "slowest_ms": round(slowest[0], 1),
        "slowest_sql": slowest[1][:120],
        "busy_cores": round((machine_busy_seconds() - busy) / (ms / 1000), 2),
        "autovacuum": [r[0][:120] for r in _server(_AUTOVACUUM)],
    }


def _time(client, url: str, params: dict, requests: int) -> dict:
    """The first GET (the page's first use after the run, part of no percentile: kept as
    ``first``), then ``requests`` timed GETs, each recorded in order (``requests``)."""
    first = _request(client, url, params)
    each = [_request(client, url, params) for _ in range(requests)]
    samples = [r["ms"] for r in each]
    return {
        "p50_ms": statistics.median(samples),
        "p95_ms": _p95(samples),
        "n": requests,
        "first": first,
        "requests": each,
    }


def _pages(run, viewer, requests: int) -> dict:
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(viewer)
    url = reverse("runs:queue", args=[run.uuid])
    explain = os.environ.get("BENCH_QUEUE_EXPLAIN_MS")
    if explain:  # diagnosis: the plans of statements slower than this, in the server's log
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            for name, value in (
                ("log_min_duration", explain),
                ("log_analyze", "on"),
                ("log_buffers", "on"),
                ("log_timing", "off"),
            ):
                cursor.execute(f"SET auto_explain.{name} = {value}")
    before = _server(_TABLE_STATS)
    return {
        "table_stats_before": before,
        "queue_page": _time(client, url, {}, requests),
        "text_filter": _time(client, url, {"entity": "accounts", "q": "user4242"}, requests),
        "api_page": _time(client, "/api/failed-records/", {"run": str(run.uuid)}, requests),
        "table_stats_after": _server(_TABLE_STATS),
    }


def _viewer():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    viewer, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    group, _ = Group.objects.get_or_create(name="viewer")
    viewer.groups.add(group)
    return viewer


def measure_run(run_uuid: str, requests: int) -> dict:
    """Time the three pages over an existing run's own failed records (read-only)."""
    from runs.models import Run

    run = Run.objects.get(uuid=run_uuid)
    return {
        "records": run.failed_records.count(),
        "run": run_uuid,
        "insert_seconds": None,
        **_pages(run, _viewer(), requests),
    }


def measure(records: int, requests: int) -> dict:
    """Create the records, time the three pages, clean up; returns the figures."""
    from mappings.models import Plan, PlanVersion, System
    from runs.models import Run

    viewer = _viewer()
    system = System.objects.create(
        name=f"bench-queue-{uuid.uuid4().hex[:8]}",
        kind="postgresql",
        host="127.0.0.1",
        database="bench_queue_none",
    )
    plan = Plan.objects.create(name=system.name, source=system, target=system, owner=viewer)
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(
        plan=plan, version=version, target=system, mode="load", launched_by=viewer, status="failed"
    )
    try:
        started = time.perf_counter()
        _fill(run, records)
        created = time.perf_counter() - started
        return {"records": records, "insert_seconds": created, **_pages(run, viewer, requests)}
    finally:
        run.delete()
        plan.delete()
        system.delete()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--run", default=None, help="time over this run's own failed records")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")
    import django

    django.setup()
    if args.run:
        print(json.dumps(measure_run(args.run, args.requests)))
    else:
        print(json.dumps(measure(args.records, args.requests)))


if __name__ == "__main__":
    main()
