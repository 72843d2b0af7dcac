"""Many runs, one target (issue 15): a rehearsal re-run of an unchanged source against the
first run, and re-processing 5,000 failed records, in one process (eager Celery).

Run through ``bash scripts/bench_many_runs.sh [--rows N] [--reprocess N]`` (a private
PostgreSQL on TEST_PG_PORT); prints one JSON line and writes bench/results/many_runs.json.
Not a test: figures, no assertions beyond "the runs succeeded and the rollbacks verified".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql


def _fresh_db(admin: str, name: str) -> str:
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    return admin.rsplit("/", 1)[0] + "/" + name


def _plan(source_url: str, target_url: str):
    from django.contrib.auth import get_user_model

    from mappings.demo import legacy_crm
    from mappings.demo_plan import demo_plan_install
    from mappings.models import System

    def system(name: str, role: str, url: str) -> System:
        p = psycopg2.extensions.parse_dsn(url)
        return System.objects.create(
            name=name,
            kind="postgresql",
            role=role,
            environment="uat",
            host=p["host"],
            port=int(p["port"]),
            database=p["dbname"],
            username=p["user"],
        )

    owner, _ = get_user_model().objects.get_or_create(username="bench")
    plan, _ = demo_plan_install(
        source=system("Many-runs source", "source", source_url),
        target=system("Many-runs target", "target", target_url),
        owner=owner,
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    plan.entities.exclude(name="accounts").delete()  # accounts only: the 2-core machine
    plan.batch_size, plan.failure_threshold_pct = 20_000, 100
    plan.save()
    return plan


def _timed_run(plan) -> tuple[dict, object]:
    """A load run in-process (eager Celery). ``seconds``: launch to the run's finished_at (as
    ``make bench`` measures a run); ``with_report_seconds``: until run_create returned, the
    post-run report (built in-process here, on a worker otherwise) included."""
    from django.db.models import Min, Sum

    from runs.services import run_create

    started = time.perf_counter()
    launched = time.time()
    run = run_create(plan=plan, user=None, mode="load")
    total = time.perf_counter() - started
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    batches = run.batches.aggregate(ms=Sum("duration_ms"), first=Min("started_at"))
    return {
        "seconds": round(run.finished_at.timestamp() - launched, 2),
        "with_report_seconds": round(total, 2),
        "prepare_seconds": round(batches["first"].timestamp() - launched, 2),
        "batch_engine_seconds": round((batches["ms"] or 0) / 1000, 2),
    }, run


def _reprocess(run, n: int) -> dict:
    """Correct ``n`` failed e-mail records (status fixed) and re-process them in one call."""
    from runs.models import FailedRecord
    from runs.services import failed_record_reprocess

    ids = list(
        FailedRecord.objects.filter(run=run, field="email")
        .order_by("pk")
        .values_list("pk", flat=True)[:n]
    )
    for record in FailedRecord.objects.filter(pk__in=ids):
        record.corrected_values = {"Email_Address": f"fixed{record.source_key}@example.com"}
        record.status = "fixed"
        record.save(update_fields=["corrected_values", "status"])
    from runs.services.hooks import after_queue_work

    started = time.perf_counter()
    result = failed_record_reprocess(
        records=FailedRecord.objects.filter(pk__in=ids), user=None, reconcile=False
    )
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    after_queue_work(run, "bench")  # the report's reconciliation again, as the page does
    reconcile_s = time.perf_counter() - started
    return {
        "records": len(ids),
        "fixed": result.fixed,
        "still_failing": result.still_failing,
        "seconds": round(seconds, 2),
        "reconcile_again_seconds": round(reconcile_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000, help="source customers")
    parser.add_argument("--reprocess", type=int, default=5_000)
    parser.add_argument("--profile", help="write a cProfile of the re-run to this file")
    args = parser.parse_args()
    admin = os.environ["TEST_PG_URL"]
    os.environ["DATABASE_URL"] = _fresh_db(admin, "mp_many_app").replace(
        "postgresql://", "postgres://"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")
    import django

    django.setup()
    from celery import current_app
    from django.core.management import call_command

    from mappings.demo import legacy_crm
    from runs.services import run_rollback_stack_request

    call_command("migrate", verbosity=0)
    current_app.conf.task_always_eager = current_app.conf.task_eager_propagates = True
    source, target = _fresh_db(admin, "mp_many_src"), _fresh_db(admin, "mp_many_tgt")
    legacy_crm.build_source(source, rows=args.rows, seed=7)
    legacy_crm.build_target(target)
    plan = _plan(source, target)
    from runs.models import FailedRecord

    first_t, first = _timed_run(plan)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        again_t, again = profiler.runcall(_timed_run, plan)
        profiler.dump_stats(args.profile)
    else:
        again_t, again = _timed_run(plan)
    reprocess = _reprocess(again, args.reprocess) if args.reprocess else None
    started = time.perf_counter()
    rollback = run_rollback_stack_request(run=first, user=None)
    undo_s = time.perf_counter() - started
    rollback.refresh_from_db()
    result = {
        "rows": args.rows,
        "first_run": {**first_t, "loaded": first.loaded},
        "rerun": {
            **again_t,
            "ratio": round(again_t["seconds"] / first_t["seconds"], 3),
            "ratio_with_report": round(
                again_t["with_report_seconds"] / first_t["with_report_seconds"], 3
            ),
            "unchanged": again.unchanged,
            "written": again.inserted + again.updated,
            "failed": again.failed,
            "failures_carried": FailedRecord.objects.filter(
                run=again, carried_from__isnull=False
            ).count(),
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "reprocess": reprocess,
        "rollback_stack": {"seconds": round(undo_s, 2), "first_rollback": rollback.status},
    }
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "many_runs.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
