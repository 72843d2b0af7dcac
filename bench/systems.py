"""The systems the benchmark runs on the same data and server: the source build, the three
references (raw COPY pipe, SQL-transform pipe, pgloader) and our pipeline (2 Celery workers:
the run, its report, reconciliation, rehearsal re-run, re-process, rollback; the error-queue
pages). Each returns figures; nothing here judges them (bench/judgement.py)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psycopg2

from mappings.demo import legacy_crm

from . import measure, pipeline, references
from .judgement import queue_p95s, summarize_config
from .measure import Dsn, median
from .observe import MachineObserver, wait_quiet
from .statements import (
    StatementSampler,
    statements_all,
    statements_grouped,
    statements_reset,
    statements_top,
)

DBS = {
    "source": "mp_bench_source",
    "target": "mp_bench_target",
    "app": "mp_bench_app",
    "pgloader": "mp_bench_pgloader",
}


T = TypeVar("T")
REPROCESS_RECORDS = 5_000  # issue 20: re-process of 5,000 failed records
STATEMENT_INTERVAL = 20.0  # seconds between pg_stat_statements samples during the run


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_data(admin: Dsn, rows: int) -> tuple[Dsn, Dsn, dict]:
    """Source ``customers`` (one database per size, kept when it already holds ``rows``
    customers; contacts and orders are not built: the bench migrates accounts only) and an
    empty target database."""
    name = f"{DBS['source']}_{rows}"
    source = admin.db(name)
    counts = None
    try:
        with psycopg2.connect(source.url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM customers")
            counts = cur.fetchone()[0]
        conn.close()
    except psycopg2.Error:  # database or table missing: created below
        counts = None
    start = time.perf_counter()
    if counts != rows:
        pipeline.recreate_database(admin, name)
        log(f"building {rows:,} dirty customers in {source.dbname}")
        counts = legacy_crm.build_source(source.url, rows=rows, tables=("customers",))
        built = True
    else:
        counts, built = {"customers": rows}, False
    seconds = time.perf_counter() - start
    target = pipeline.recreate_database(admin, DBS["target"])
    return source, target, {"counts": counts, "built": built, "seconds": seconds}


def _attempt(key: str, fn):
    """Run one reference; retry once (pgloader's fixed Lisp heap sometimes runs out), then
    report the failure and go on, so one broken reference does not lose the whole bench."""
    for attempt in (1, 2):
        try:
            return fn()
        except RuntimeError as exc:
            log(f"{key} failed (attempt {attempt}): {str(exc).splitlines()[0][:200]}")
    return None


def settle(dsn: Dsn) -> float:
    """Before a measured phase: the server vacuumed, analysed and checkpointed (each system and
    phase starts from the same quiet server, not from the previous one's autovacuum work), and
    the machine quiet (bench.observe.wait_quiet: no other program's load).
    Returns the machine's CPU probe then (bench.measure.cpu_probe_ms)."""
    seconds = measure.settle_server(dsn)
    waited, cores = wait_quiet(dsn, patience=float(os.environ.get("BENCH_QUIET_WAIT", "600")))
    probe = measure.cpu_probe_ms()
    log(
        f"  settle: VACUUM (ANALYZE) + CHECKPOINT in {seconds:.1f} s; waited {waited:.0f} s "
        f"for a quiet machine (other programs {cores:.2f} cores); CPU probe {probe} ms"
    )
    return probe


def reference_round(source: Dsn, target: Dsn, i: int, workdir: Path, results: dict) -> None:
    """Round ``i`` of the references (raw pipe, SQL pipe, pgloader), each after a settle,
    appended to ``results`` (name -> list of runs; a reference that fails is left out)."""
    references.prepare(source, target)
    for key, fn in (
        ("raw_pipe", lambda: references.raw_pipe(source, target)),
        ("sql_pipe", lambda: references.sql_pipe(source, target)),
        ("pgloader", lambda: references.pgloader(source, DBS["pgloader"], workdir / "pgloader")),
    ):
        probe = settle(source)
        busy = measure.machine_busy_seconds()
        with MachineObserver(source) as observed:
            res = _attempt(key, fn)
        if res is None:
            continue
        busy = measure.machine_busy_seconds() - busy
        log(f"{res.name} #{i + 1}: {res.seconds:.2f} s, {res.rows:,} rows, {busy:.1f} busy core-s")
        results.setdefault(key, []).append(
            {
                **res.__dict__,
                "machine_busy_seconds": round(busy, 2),
                "cpu_probe_ms": probe,
                "observed": observed.summary(),
            }
        )


def summarize_references(results: dict) -> dict:
    """Medians per reference of ``reference_round``'s runs (one absent that never ran)."""
    return {
        k: {
            "name": v[0]["name"],
            "note": v[0]["note"],
            "runs": v,
            "seconds": median([r["seconds"] for r in v]),
            "rows": v[0]["rows"],
            "peak_rss_mb": median([r["peak_rss_mb"] for r in v if r["peak_rss_mb"]]),
            "machine_busy_seconds": median([r["machine_busy_seconds"] for r in v]),
        }
        for k, v in results.items()
        if v
    }


def run_references(source: Dsn, target: Dsn, repeat: int, workdir: Path) -> dict:
    """``repeat`` rounds of the references back to back (without our pipeline: with it they
    are interleaved, ``run_pipeline(before_each=...)``)."""
    results: dict[str, list] = {}
    for i in range(repeat):
        reference_round(source, target, i, workdir, results)
    return summarize_references(results)


def run_pipeline(
    admin: Dsn,
    source: Dsn,
    target: Dsn,
    args: argparse.Namespace,
    batch_sizes: list[int],
    queue: bool = False,
    rerun: bool = True,
    progress: Callable[[int, dict], None] | None = None,
    before_each: Callable[[int], None] | None = None,
) -> dict:
    """Our pipeline at each batch size (``queue``: the error-queue pages over the first
    configuration's run; ``rerun``: the rehearsal re-run, judged at the first size only;
    ``before_each(i)``: called before the first configuration's repeat ``i`` — the references'
    round i, so each is measured next to ours on the machine of that moment) on a fresh app
    database; figures per configuration, handed to ``progress(size, summary)`` after
    every phase too (so an interrupted bench keeps what it measured)."""
    app = pipeline.App(db=admin.db(DBS["app"]), redis_url=args.redis_url, workdir=args.workdir)
    pipeline.recreate_database(admin, DBS["app"])
    log("manage.py migrate")
    app.manage("migrate", "--noinput", log="migrate")
    plan = app.setup(source, target, batch_sizes[0])
    if (
        plan["lookups"].get("account-status") != references.STATUS_MAP
        or plan["lookups"].get("us-states") != legacy_crm.US_STATES
    ):
        raise RuntimeError("the demo plan's lookups differ from the SQL reference's")
    configs: dict[str, dict] = {}
    app.start_workers(2)
    try:
        for n, size in enumerate(batch_sizes):
            app.setup(source, target, size)
            configs[str(size)] = run_config(
                app,
                target,
                plan["plan"],
                size,
                args.repeat,
                queue=queue and n == 0,
                rerun=rerun,
                run_only=getattr(args, "run_only", False),
                progress=partial(progress, size) if progress else None,
                before_each=before_each if n == 0 else None,
            )
    finally:
        app.stop_workers()
    first = next(iter(configs.values()))
    pages = next((r["queue_pages"] for r in first["runs"] if r.get("queue_pages")), None)
    return {"plan": plan, "configs": configs, "queue_pages": pages}


def queue_pages(app: pipeline.App, run_uuid: str) -> dict | None:
    """The error-queue page, its text filter and the API page timed over the run's own failed
    records while they are open (before the re-run and the rollback); errors recorded.
    Like the other phases it starts on a quiet machine and is observed (``observed``); unlike
    them the server is not settled first: a VACUUM (ANALYZE) would do the product's own
    statistics work for it (the page a user opens right after a run is what is timed)."""
    waited, cores = wait_quiet(app.db, patience=float(os.environ.get("BENCH_QUIET_WAIT", "600")))
    log(
        f"  error-queue pages over run {run_uuid}'s failed records (bench.queue_pages); waited "
        f"{waited:.0f} s for a quiet machine (other programs {cores:.2f} cores)"
    )
    try:
        with MachineObserver(app.db, probe_every=1_000_000) as observed:
            res = app.module("bench.queue_pages", "--run", run_uuid)
    except RuntimeError as exc:
        log(f"  error-queue pages FAILED: {str(exc).splitlines()[-1][:200]}")
        return None
    res["quiet_wait"] = {"seconds": round(waited, 1), "foreign_cores": round(cores, 2)}
    res["observed"] = observed.summary()
    log(
        f"  {res['records']:,} records, p95 ms: "
        + ", ".join(f"{k} {v:.0f}" for k, v in queue_p95s(res).items())
    )
    return res


def _phase(statements: dict, dsn: Dsn, name: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with the server's statements during it kept under ``statements[name]``;
    for the run, also how each statement's mean time moved (``statements["run_timeline"]``)."""
    statements_reset(dsn)
    if name != "run":
        out = fn(*args)
    else:
        with StatementSampler(dsn, STATEMENT_INTERVAL) as sampler:
            out = fn(*args)
        statements["run_timeline"] = sampler.timeline(limit=20)
    statements[name] = statements_top(dsn)
    if os.environ.get("BENCH_STATEMENTS_ALL"):  # every statement, planning time included
        statements[f"{name}_all"] = statements_all(dsn)
    return out


def run_config(
    app: pipeline.App,
    target: Dsn,
    plan: str,
    size: int,
    repeat: int,
    queue: bool = False,
    rerun: bool = True,
    progress: Callable[[dict], None] | None = None,
    run_only: bool = False,
    before_each: Callable[[int], None] | None = None,
) -> dict:
    """``repeat`` times: run, report, reconciliation, (queue pages), rehearsal re-run,
    re-process, rollback; the medians (bench.judgement.summarize_config). ``run_only``: the
    run alone (tracing it; the later phases and their lines are not measured)."""
    runs: list[dict] = []
    for i in range(repeat):
        if before_each is not None:
            before_each(i)
        pipeline.reset_target(target)
        probe = settle(target)
        log(f"our pipeline, batch size {size:,}, #{i + 1}: run_plan {plan} --wait")
        statements: dict[str, dict | None] = {}
        phase = partial(_phase, statements, target)

        def told(res: dict, runs: list[dict] = runs) -> None:  # after each phase
            if progress:
                progress(summarize_config(size, [*runs, res]))

        try:
            res = phase("run", pipeline.launch, app, plan)
            res["statements"] = statements
            res["cpu_probe_ms"] = probe
            told(res)
            log(
                f"  run {res['run']['status']} in {res['seconds']:.1f} s "
                f"(loaded {res['run']['loaded']:,}, failed {res['run']['failed']:,})"
            )
            _log_observed(res["observed"])
            if res["run"]["status"] != "succeeded":
                raise RuntimeError(f"run {res['run']['status']}: {res['run']['error']}")
            uuid = res["run"]["uuid"]
            if run_only:
                runs.append(res)
                continue
            res["report"] = phase("report", pipeline.wait_report, app, uuid)
            told(res)
            log(
                f"  app report {res['report']['verdict']} in {res['report']['seconds']:.1f} s "
                f"(waited {res['report']['waited_seconds']:.1f} s)"
            )
            res["reconcile"] = phase("reconcile", pipeline.reconcile, target, uuid)
            told(res)
            log(
                f"  reconciliation {res['reconcile']['seconds']:.1f} s, "
                f"{res['reconcile']['mismatched']:,} mismatched"
            )
            if queue and i == 0:
                res["queue_pages"] = phase("queue_pages", queue_pages, app, uuid)
                told(res)
            if rerun:
                res["rerun"] = phase("rerun", rehearsal_rerun, app, target, plan, res)
                told(res)
            res["reprocess"] = phase("reprocess", reprocess, app, uuid)
            told(res)
            settle(target)
            res["rollback"] = phase("rollback", pipeline.rollback, app, target, uuid)
            told(res)
            log(f"  rollback {res['rollback']['status']} in {res['rollback']['seconds']:.1f} s")
        except Exception as exc:  # noqa: BLE001 - reported in the results, never hidden
            log(f"  FAILED: {exc}")
            res = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        runs.append(res)
    return summarize_config(size, runs)


def _log_observed(seen: dict) -> None:
    """One line on what else the machine and the server did during the run."""
    wal = seen["server"].get("wal", {})
    top = ", ".join(f"{k[:40]} {v:.1f}" for k, v in list(seen["cpu_by_process"].items())[:6])
    log(
        f"  observed: foreign CPU {seen['foreign_cpu_seconds']} s, "
        f"CPU probe {seen['cpu_probe_ms']['median']} ms, steal "
        f"{seen['steal_seconds']} s, autovacuum seen "
        f"{sum(seen['autovacuum_seen'].values())} s, WAL {wal.get('bytes', 0) / 1e6:.0f} MB "
        f"({wal.get('fpi', 0):,} full-page images); CPU s by process: {top}"
    )


def reprocess(app: pipeline.App, run_uuid: str, records: int = REPROCESS_RECORDS) -> dict:
    """Re-process ``records`` corrected failed records of the run in one call (bench.reprocess);
    an error is recorded, not raised (the run's rollback still follows)."""
    try:
        res = app.module("bench.reprocess", "--run", run_uuid, "--records", str(records))
    except RuntimeError as exc:
        log(f"  re-process FAILED: {str(exc).splitlines()[-1][:200]}")
        return {"error": str(exc)[-2000:]}
    log(
        f"  re-process of {res['records']:,} failed records in {res['seconds']:.1f} s "
        f"({res['fixed']:,} fixed, {res['still_failing']:,} still failing)"
    )
    return res


def rehearsal_rerun(app: pipeline.App, target: Dsn, plan: str, first: dict) -> dict:
    """The same plan again over the unchanged source and the loaded target (a rehearsal
    re-run), then its rollback (newest first: the first run is rolled back after it)."""
    settle(target)
    log(f"  rehearsal re-run of {plan} over the unchanged source")
    again = pipeline.launch(app, plan)
    # the re-run's own statements (the phase's also hold its report and its rollback)
    alone = statements_grouped(target)
    run = again["run"]
    log(
        f"  re-run {run['status']} in {again['seconds']:.1f} s "
        f"({again['seconds'] / first['seconds']:.2f} of the first run; loaded {run['loaded']:,})"
    )
    undo = pipeline.rollback(app, target, run["uuid"])
    log(f"  re-run rollback {undo['status']} in {undo['seconds']:.1f} s")
    return {
        "seconds": again["seconds"],
        "ratio": again["seconds"] / first["seconds"],
        "run": run,
        "cpu_seconds": again["cpu_seconds"],
        "batch_stats": again["batch_stats"],
        "statements": alone,
        "rollback": undo,
    }
