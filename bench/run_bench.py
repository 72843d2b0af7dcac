"""The benchmark: N dirty legacy customers, PostgreSQL → PostgreSQL, ours against references.

Usage (scripts/bench.sh starts a private PostgreSQL and Redis and calls this):
    python -m bench.run_bench --pg-port 55533 --redis-url redis://127.0.0.1:56480/0 \
        [--rows 1000000] [--repeat 1] [--batch-size 20000,50000]

Prints a table and writes bench/results/bench-<timestamp>.json and bench/results/latest.json.
Not a test: it measures and reports; a missed target is reported, not raised.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import time
import traceback
from pathlib import Path

import psycopg2

from mappings.demo import legacy_crm

from . import measure, pipeline, references
from .measure import Dsn, machine_facts, median

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {  # from the issue: our time / reference time, and worker memory
    "sql_pipe": 1.0,
    "pgloader": 1.5,  # an aim, not a target: pgloader applies no rules and keeps no ledger
    "raw_pipe": None,  # reported only: the physical floor for moving the rows
    "worker_rss_mb": 400.0,
    "queue_p95_ms": 300.0,
    "sql_pipe_busy": 1.3,  # busy core-seconds, ours / the SQL-transform pipe's
    "rerun": 0.35,  # rehearsal re-run of an unchanged source / the first run
    "report": 0.5,  # the app's post-run report (reconciliation + post checks) / the run
    "reconcile": 0.5,  # key-level reconciliation / the run (judged at the largest size)
    "rollback": 0.6,  # rollback / the run (judged at the largest size)
    "scale": 10.5,  # wall time at the second size / at the first, per 10x rows
}
DBS = {
    "source": "mp_bench_source",
    "target": "mp_bench_target",
    "app": "mp_bench_app",
    "pgloader": "mp_bench_pgloader",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=55533)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--redis-url", default="redis://127.0.0.1:56480/0")
    p.add_argument(
        "--rows",
        default="1000000",
        help="comma-separated sizes, e.g. 1000000,10000000: the first is judged against the "
        "references; each later one runs our pipeline at the first batch size, for the "
        "scale and memory lines",
    )
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument(
        "--batch-size",
        default="20000,50000",
        help="comma-separated; the first one is judged against the targets (20,000: the "
        "batch size that keeps a worker under 400 MB)",
    )
    p.add_argument("--workdir", type=Path, default=ROOT / ".data" / "bench" / "work")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--skip-references", action="store_true")
    p.add_argument("--skip-pipeline", action="store_true")
    p.add_argument(
        "--queue-records",
        type=int,
        default=None,
        help="failed records for the error-queue page timings (default 16%% of --rows; 0 skips)",
    )
    return p.parse_args(argv)


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


def run_references(source: Dsn, target: Dsn, repeat: int, workdir: Path) -> dict:
    references.prepare(source, target)
    results: dict[str, list] = {"raw_pipe": [], "sql_pipe": [], "pgloader": []}
    for i in range(repeat):
        for key, fn in (
            ("raw_pipe", lambda: references.raw_pipe(source, target)),
            ("sql_pipe", lambda: references.sql_pipe(source, target)),
            (
                "pgloader",
                lambda: references.pgloader(source, DBS["pgloader"], workdir / "pgloader"),
            ),
        ):
            busy = measure.machine_busy_seconds()
            res = _attempt(key, fn)
            if res is None:
                continue
            busy = measure.machine_busy_seconds() - busy
            log(
                f"{res.name} #{i + 1}: {res.seconds:.2f} s, {res.rows:,} rows, "
                f"{busy:.1f} busy core-s"
            )
            results[key].append({**res.__dict__, "machine_busy_seconds": round(busy, 2)})
    results = {k: v for k, v in results.items() if v}  # a reference that never ran is absent
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
    }


def run_pipeline(
    admin: Dsn,
    source: Dsn,
    target: Dsn,
    args: argparse.Namespace,
    batch_sizes: list[int],
    queue_records: int = 0,
) -> dict:
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
        for size in batch_sizes:
            app.setup(source, target, size)
            configs[str(size)] = run_config(app, target, plan["plan"], size, args.repeat)
    finally:
        app.stop_workers()
    records = queue_records
    queue = None
    if records > 0:
        log(f"error-queue pages over {records:,} failed records (bench.queue_pages)")
        queue = app.module("bench.queue_pages", "--records", str(records))
        log(
            "  p95 ms: "
            + ", ".join(f"{k} {v['p95_ms']:.0f}" for k, v in queue.items() if isinstance(v, dict))
        )
    return {"plan": plan, "configs": configs, "queue_pages": queue}


def run_config(app: pipeline.App, target: Dsn, plan: str, size: int, repeat: int) -> dict:
    runs: list[dict] = []
    for i in range(repeat):
        pipeline.reset_target(target)
        log(f"our pipeline, batch size {size:,}, #{i + 1}: run_plan {plan} --wait")
        try:
            res = pipeline.launch(app, plan)
            log(
                f"  run {res['run']['status']} in {res['seconds']:.1f} s "
                f"(loaded {res['run']['loaded']:,}, failed {res['run']['failed']:,})"
            )
            if res["run"]["status"] != "succeeded":
                raise RuntimeError(f"run {res['run']['status']}: {res['run']['error']}")
            res["report"] = pipeline.wait_report(app, res["run"]["uuid"])
            log(
                f"  app report {res['report']['verdict']} in {res['report']['seconds']:.1f} s "
                f"(waited {res['report']['waited_seconds']:.1f} s)"
            )
            res["reconcile"] = pipeline.reconcile(target, res["run"]["uuid"])
            log(
                f"  reconciliation {res['reconcile']['seconds']:.1f} s, "
                f"{res['reconcile']['mismatched']:,} mismatched"
            )
            res["rerun"] = rehearsal_rerun(app, target, plan, res)
            res["rollback"] = pipeline.rollback(app, target, res["run"]["uuid"])
            log(f"  rollback {res['rollback']['status']} in {res['rollback']['seconds']:.1f} s")
        except Exception as exc:  # noqa: BLE001 - reported in the results, never hidden
            log(f"  FAILED: {exc}")
            res = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        runs.append(res)
    return summarize_config(size, runs)


def rehearsal_rerun(app: pipeline.App, target: Dsn, plan: str, first: dict) -> dict:
    """The same plan again over the unchanged source and the loaded target (a rehearsal
    re-run), then its rollback (newest first: the first run is rolled back after it)."""
    log(f"  rehearsal re-run of {plan} over the unchanged source")
    again = pipeline.launch(app, plan)
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
        "rollback": undo,
    }


def summarize_config(size: int, runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r and r["run"]["status"] == "succeeded"]

    def med(fn) -> float | None:
        return median([fn(r) for r in ok])

    return {
        "batch_size": size,
        "runs": runs,
        "succeeded": len(ok),
        "repeats": len(runs),
        "seconds": med(lambda r: r["seconds"]),
        "run_seconds": med(lambda r: r["run_seconds"]),
        # memory judged over the run AND the report the workers build after it
        "peak_worker_rss_mb": med(lambda r: _peak(r, "peak_tree_rss_mb")),
        "peak_worker_pss_mb": med(lambda r: _peak(r, "peak_tree_pss_mb")),
        "peak_worker_process_rss_mb": med(lambda r: _peak(r, "peak_process_rss_mb")),
        "run_peak_worker_rss_mb": med(
            lambda r: max(w["peak_tree_rss_mb"] for w in r["workers"].values())
        ),
        "cpu_seconds": {
            "workers": med(
                lambda r: sum(v for k, v in r["cpu_seconds"].items() if k.startswith("w"))
            ),
            "postgresql": med(lambda r: r["cpu_seconds"]["postgresql"]),
            "machine_busy": med(lambda r: r["cpu_seconds"]["machine_busy"]),
        },
        "report_seconds": med(lambda r: r["report"]["seconds"]),
        "reconcile_seconds": med(lambda r: r["reconcile"]["seconds"]),
        "table_checksum_seconds": med(lambda r: r["reconcile"]["table_checksum_seconds"]),
        "rollback_seconds": med(lambda r: r["rollback"]["seconds"]),
        "rerun_seconds": med(lambda r: r["rerun"]["seconds"]),
        "rerun_ratio": med(lambda r: r["rerun"]["ratio"]),
        "loaded": ok[0]["run"]["loaded"] if ok else None,
        "failed": ok[0]["run"]["failed"] if ok else None,
    }


def _peak(res: dict, key: str) -> float:
    """A run's worker memory peak over the run and its report."""
    phases = [res["workers"], res.get("report", {}).get("workers", {})]
    return max(w[key] for phase in phases for w in phase.values())


def _check(value: float | None, key: str) -> dict:
    limit = TARGETS[key]
    verdict = None if value is None or limit is None else value <= limit
    return {"value": value, "limit": limit, "pass": verdict}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def judge(
    rows: int,
    refs: dict,
    ours: dict | None,
    queue: dict | None = None,
    sizes: dict | None = None,
) -> dict:
    """Ratios of our figures to the references and to the issue's targets, pass/fail each."""
    out: dict = {"targets": TARGETS, "checks": {}}
    ours = ours or {}
    seconds = ours.get("seconds")
    if seconds:
        out["rows_per_second"] = rows / seconds
    checks = out["checks"]
    for key in ("sql_pipe", "pgloader", "raw_pipe"):
        checks[key] = _check(_ratio(seconds, refs.get(key, {}).get("seconds")), key)
        checks[key]["ratio"] = checks[key].pop("value")
    sql_busy = (refs.get("sql_pipe", {}).get("runs") or [{}])[0].get("machine_busy_seconds")
    busy = (ours.get("cpu_seconds") or {}).get("machine_busy")
    checks["sql_pipe_busy"] = _check(_ratio(busy, sql_busy), "sql_pipe_busy")
    checks["worker_rss_mb"] = _check(ours.get("peak_worker_rss_mb"), "worker_rss_mb")
    checks["rerun"] = _check(ours.get("rerun_ratio"), "rerun")
    checks["report"] = _check(_ratio(ours.get("report_seconds"), seconds), "report")
    largest = ours
    if sizes:
        ordered = [sizes[k] for k in sorted(sizes, key=int)]
        largest = ordered[-1]
        for n, cfg in sizes.items():
            checks[f"worker_rss_mb@{n}"] = _check(cfg.get("peak_worker_rss_mb"), "worker_rss_mb")
            checks[f"report@{n}"] = _check(
                _ratio(cfg.get("report_seconds"), cfg.get("seconds")), "report"
            )
        if len(ordered) > 1:
            (n0, c0), (n1, c1) = sorted(sizes.items(), key=lambda kv: int(kv[0]))[-2:]
            per_10x = _ratio(c1.get("seconds"), c0.get("seconds"))
            if per_10x is not None:
                per_10x *= 10 * int(n0) / int(n1)  # normalise to a 10x step
            checks["scale"] = _check(per_10x, "scale")
    for key, figure in (("reconcile", "reconcile_seconds"), ("rollback", "rollback_seconds")):
        checks[key] = _check(_ratio(largest.get(figure), largest.get("seconds")), key)
    pages = [v["p95_ms"] for v in (queue or {}).values() if isinstance(v, dict)]
    checks["queue_p95_ms"] = _check(max(pages) if pages else None, "queue_p95_ms")
    return out


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def print_table(result: dict) -> None:
    rows = result["rows"]
    lines = [
        f"\n{rows:,} legacy customers, PostgreSQL → PostgreSQL "
        f"({result['machine']['nproc']} CPUs, {result['machine']['ram_gb']} GB RAM)\n",
        f"{'system':<44} {'seconds':>9} {'rows/s':>11} {'ours ÷ it':>10} {'peak RSS MB':>12}",
    ]
    ours = result["pipeline"]["configs"] if result.get("pipeline") else {}
    head = next(iter(ours.values()), None)
    for ref in result["references"].values():
        ratio = head["seconds"] / ref["seconds"] if head and head["seconds"] else None
        rps = rows / ref["seconds"] if ref["seconds"] else None
        lines.append(
            f"{ref['name']:<44} {_fmt(ref['seconds']):>9} {_fmt(rps, ',.0f'):>11} "
            f"{_fmt(ratio):>10} {_fmt(ref['peak_rss_mb'], '.0f'):>12}"
        )
    busy = [
        f"{k} {ref['machine_busy_seconds']:.1f}"
        for k, ref in result["references"].items()
        if ref.get("machine_busy_seconds") is not None
    ]
    if busy:
        lines.append(f"{'  references, machine busy core-s':<44} {', '.join(busy)}")
    for size, cfg in ours.items():
        rps = rows / cfg["seconds"] if cfg["seconds"] else None
        lines.append(
            f"{'ours, batch ' + format(int(size), ',') + ' (2 workers)':<44} "
            f"{_fmt(cfg['seconds']):>9} {_fmt(rps, ',.0f'):>11} {'1.00':>10} "
            f"{_fmt(cfg['peak_worker_rss_mb'], '.0f'):>12}"
        )
        lines.append(
            f"{'  worker peak: tree RSS / tree PSS / process RSS':<44} "
            f"{_fmt(cfg['peak_worker_rss_mb'], '.0f')} / "
            f"{_fmt(cfg['peak_worker_pss_mb'], '.0f')} / "
            f"{_fmt(cfg['peak_worker_process_rss_mb'], '.0f')} MB"
        )
        cpu = cfg["cpu_seconds"]
        lines.append(
            f"{'  CPU s: workers / PostgreSQL / machine busy':<44} "
            f"{_fmt(cpu['workers'], '.1f')} / {_fmt(cpu['postgresql'], '.1f')} / "
            f"{_fmt(cpu['machine_busy'], '.1f')}"
        )
        lines.append(
            f"{'  app report (reconciliation + post checks)':<44} "
            f"{_fmt(cfg['report_seconds'])} s; run-only peak tree RSS "
            f"{_fmt(cfg['run_peak_worker_rss_mb'], '.0f')} MB"
        )
        lines.append(
            f"{'  rehearsal re-run (unchanged source)':<44} "
            f"{_fmt(cfg.get('rerun_seconds'))} s = {_fmt(cfg.get('rerun_ratio'))} of the run"
        )
        lines.append(
            f"{'  reconciliation / table checksum / rollback':<44} "
            f"{_fmt(cfg['reconcile_seconds'])} / {_fmt(cfg['table_checksum_seconds'])}"
            f" / {_fmt(cfg['rollback_seconds'])} s"
        )
    lines.append("\ntargets (first batch size):")
    for key, check in result["judgement"]["checks"].items():
        shown = check.get("ratio", check.get("value"))
        key = f"{key:<14}" if len(key) <= 14 else key
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[check["pass"]]
        if check["limit"] is None:
            verdict = "reported"
        lines.append(f"  {key:<14} {_fmt(shown):>9}  limit {str(check['limit']):<6} {verdict}")
    print("\n".join(lines))


def write_results(result: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str)
    path = folder / f"bench-{result['started']}.json"
    path.write_text(text)
    (folder / "latest.json").write_text(text)
    return path


def _exit_on_term(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so `finally` blocks stop the workers this bench started


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_term)
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    batch_sizes = [int(s) for s in args.batch_size.split(",") if s.strip()]
    sizes = [int(s) for s in str(args.rows).split(",") if s.strip()]
    admin = Dsn(args.pg_host, args.pg_port, args.pg_user, "postgres")
    result: dict = {
        "started": dt.datetime.now().strftime("%Y%m%dT%H%M%S"),
        "rows": sizes[0],
        "sizes": sizes,
        "repeat": args.repeat,
        "batch_sizes": batch_sizes,
        "machine": machine_facts(admin),
        "references": {},
        "pipeline": None,
        "by_size": {},
    }
    for n, rows in enumerate(sizes):
        source, target, data = build_data(admin, rows)
        result.setdefault("data", data)
        log(f"source ready: {data['counts']} ({data['seconds']:.1f} s)")
        if n == 0 and not args.skip_references:
            result["references"] = run_references(source, target, args.repeat, args.workdir)
        if args.skip_pipeline:
            continue
        last = n == len(sizes) - 1
        queue = args.queue_records if args.queue_records is not None else rows * 16 // 100
        try:
            res = run_pipeline(
                admin,
                source,
                target,
                args,
                batch_sizes if n == 0 else batch_sizes[:1],
                queue_records=queue if last else 0,
            )
        except Exception as exc:  # noqa: BLE001 - the JSON records it
            log(f"our pipeline could not run at {rows:,} rows: {exc}")
            result.setdefault("pipeline_error", f"{rows}: {type(exc).__name__}: {exc}")
            continue
        if n == 0:
            result["pipeline"] = res
        result["by_size"][str(rows)] = next(iter(res["configs"].values()), {})
        if last:
            result["queue_pages"] = res.get("queue_pages")
    configs = (result["pipeline"] or {}).get("configs", {})
    result["judgement"] = judge(
        sizes[0],
        result["references"],
        next(iter(configs.values()), None),
        result.get("queue_pages"),
        result["by_size"],
    )
    print_table(result)
    path = write_results(result, args.results)
    log(f"wrote {path} and {args.results / 'latest.json'}")
    return 0 if result.get("pipeline") or args.skip_pipeline else 1


if __name__ == "__main__":
    sys.exit(main())
