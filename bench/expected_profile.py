"""CPU of the report's expected side per key range, in one process, on a bench run that exists
already (not a test, no limit).

    .venv/bin/python -m bench.expected_profile --pg-port 55529 [--repeat 3] [--profile out.prof]

Against a bench PostgreSQL that still holds a run (``scripts/bench.sh ... --run-only`` leaves
its databases; start the server again on its data directory): reads the last run's accounts
entity, its post rules' needs and failed keys as the report does, then computes every key
range's Part (``_range_part``: the source range read, failed keys dropped, the run's rules,
the Part) in this thread, one range after another, ``--repeat`` times. Prints each pass's
CPU seconds (``time.thread_time``) and wall, their medians, the load average, and a digest of
the Parts (rows, sums, category counts, every sample row in order): two versions of the code
must print the same digest. ``--profile`` writes cProfile's stats of the last pass.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import os
import resource
import statistics
import time


def _load() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def digest(parts: list) -> str:
    """SHA-256 over every Part's figures and sample rows (index, columns, values), in order."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr((part.rows, sorted(part.sums.items()))).encode())
        h.update(repr(sorted((c, sorted(n.items())) for c, n in part.counts.items())).encode())
        for group in (part.smallest, part.picked):
            for key in sorted(group, key=repr):
                frame = group[key]
                h.update(repr((key, list(frame.columns), [str(d) for d in frame.dtypes])).encode())
                h.update(repr(frame.index.tolist()).encode())
                for col in frame.columns:
                    h.update(repr(frame[col].tolist()).encode())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-port", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{args.pg_port}/mp_bench_app"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")
    import django

    django.setup()
    from runs.connections import connection_spec
    from runs.engine.connectors import connect
    from runs.models import Run
    from runs.services.state import run_entities, run_snapshot
    from validation import reconciliation as rec
    from validation.prefetch import Reader

    run = Run.objects.order_by("-pk").first()
    entity = next(e for e in run_entities(run) if e.name == "accounts")
    needs = rec._post_needs(run, entity)
    failed = rec._failed_keys(run, entity)
    source = connect(*connection_spec(run.plan.source))
    target = connect(*connection_spec(run.target))
    reader = Reader(run, run_snapshot(run), source, target)
    ranges = source.key_ranges(
        entity.source_table, entity.source_key, rec.chunk_size(reader.snapshot, entity)
    )
    cpu, proc, wall, found = [], [], [], ""
    for i in range(args.repeat):
        gc.collect()
        profile = cProfile.Profile() if args.profile and i == args.repeat - 1 else None
        started, cpu0, proc0 = time.monotonic(), time.thread_time(), time.process_time()
        if profile is not None:
            profile.enable()
        parts = [
            rec._range_part(reader, r, entity=entity, failed=failed, needs=needs) for r in ranges
        ]
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        cpu.append(time.thread_time() - cpu0)
        proc.append(time.process_time() - proc0)
        wall.append(time.monotonic() - started)
        found = digest(parts)
        del parts
    source.close()
    target.close()
    print(
        json.dumps(
            {
                "ranges": len(ranges),
                "failed_keys": len(failed),
                "cpu_s": [round(c, 2) for c in cpu],
                "cpu_median_s": round(statistics.median(cpu), 2),
                "process_cpu_s": [round(c, 2) for c in proc],
                "process_cpu_median_s": round(statistics.median(proc), 2),
                "wall_s": [round(w, 2) for w in wall],
                "load": _load(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "digest": found,
            }
        )
    )


if __name__ == "__main__":
    main()
