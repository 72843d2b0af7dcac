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
import signal
import sys
from functools import partial
from pathlib import Path

from .judgement import judge
from .measure import Dsn, machine_facts
from .output import print_table, write_results
from .systems import (
    build_data,
    log,
    reference_round,
    run_pipeline,
    run_references,
    summarize_references,
)

ROOT = Path(__file__).resolve().parent.parent


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
        "--run-only",
        action="store_true",
        help="our pipeline's run alone: no report, reconciliation, queue pages, re-run, "
        "re-process or rollback (tracing the run; those lines are not measured)",
    )
    p.add_argument(
        "--skip-queue",
        action="store_true",
        help="skip the error-queue page timings (else over the largest size's run's own "
        "failed records)",
    )
    return p.parse_args(argv)


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

    def save(incomplete: bool) -> Path:
        """Judge what is measured so far and write the JSON (``incomplete`` while running)."""
        configs = (result["pipeline"] or {}).get("configs", {})
        result["incomplete"] = incomplete
        result["judgement"] = judge(
            sizes[0],
            result["references"],
            next(iter(configs.values()), None),
            result.get("queue_pages"),
            result["by_size"],
        )
        return write_results(result, args.results)

    def progress(n: int, rows: int, batch: int, summary: dict) -> None:
        """After each phase of our pipeline: keep its figures and write them at once."""
        if n == 0:
            result["pipeline"] = result["pipeline"] or {"configs": {}}
            result["pipeline"]["configs"][str(batch)] = summary
        if batch == batch_sizes[0]:
            result["by_size"][str(rows)] = summary
            pages = [r["queue_pages"] for r in summary["runs"] if r.get("queue_pages")]
            if pages:
                result["queue_pages"] = pages[0]
        save(incomplete=True)

    for n, rows in enumerate(sizes):
        source, target, data = build_data(admin, rows)
        result.setdefault("data", data)
        log(f"source ready: {data['counts']} ({data['seconds']:.1f} s)")
        before_each = None
        if n == 0 and not args.skip_references:
            if args.skip_pipeline:
                result["references"] = run_references(source, target, args.repeat, args.workdir)
                save(incomplete=True)
            else:  # each round just before our repeat of the same number (A B A B ...)
                refs: dict[str, list] = {}

                def before_each(i: int, source=source, target=target, refs=refs) -> None:
                    reference_round(source, target, i, args.workdir, refs)
                    result["references"] = summarize_references(refs)
                    save(incomplete=True)

        if args.skip_pipeline:
            continue
        last = n == len(sizes) - 1
        try:
            res = run_pipeline(
                admin,
                source,
                target,
                args,
                batch_sizes if n == 0 else batch_sizes[:1],
                queue=last and not args.skip_queue,
                rerun=n == 0,  # judged at the first size only
                progress=partial(progress, n, rows),
                before_each=before_each,
            )
        except Exception as exc:  # noqa: BLE001 - the JSON records it
            log(f"our pipeline could not run at {rows:,} rows: {exc}")
            result.setdefault("pipeline_error", f"{rows}: {type(exc).__name__}: {exc}")
            if before_each is not None and "references" not in result:  # ours never started
                result["references"] = run_references(source, target, args.repeat, args.workdir)
            continue
        if n == 0:
            result["pipeline"] = res
        result["by_size"][str(rows)] = next(iter(res["configs"].values()), {})
        if last:
            result["queue_pages"] = res.get("queue_pages")
    path = save(incomplete=False)
    print_table(result)
    log(f"wrote {path} and {args.results / 'latest.json'}")
    return 0 if result.get("pipeline") or args.skip_pipeline else 1


if __name__ == "__main__":
    sys.exit(main())
