"""The app's post-run report built again, in this process, on a bench run that exists already
(not a test, no limit): where the report's time goes, app side and server side.

    .venv/bin/python -m bench.report_again --pg-port 55545 [--restore tpl_] [--profile out.prof]

Against a bench PostgreSQL that still holds a run (``scripts/bench.sh ... --run-only`` leaves
its databases; start the server again on its data directory). ``--restore PREFIX`` first
recreates ``mp_bench_target`` and ``mp_bench_app`` from the databases ``PREFIX + target`` and
``PREFIX + app`` (copies made after the run, e.g. with the key map put back into its pending
arrays), so every repeat starts from the same state. Prints the report's seconds, the peak RSS
of this process, the load average, and the server statements of the report by total time
(pg_stat_statements, reset first); ``--profile`` writes cProfile's stats of the app side.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import time

import psycopg2

DATABASES = ("mp_bench_target", "mp_bench_app")


def _admin(port: int):  # noqa: ANN202 - a psycopg2 connection
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    return conn


def restore(port: int, prefix: str) -> None:
    """Drop the bench's target and app databases and copy them again from the templates."""
    conn = _admin(port)
    with conn.cursor() as cur:
        for name in DATABASES:
            copy = prefix + name.removeprefix("mp_bench_")
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{copy}"')
        cur.execute("CHECKPOINT")
    conn.close()


def statements(port: int, top: int) -> list[dict]:
    """The server statements since the reset, largest total time first."""
    conn = _admin(port)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT d.datname, s.calls, round(s.total_exec_time::numeric, 1), s.rows, "
            "left(regexp_replace(s.query, '\\s+', ' ', 'g'), 160) "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "ORDER BY s.total_exec_time DESC LIMIT %s",
            (top,),
        )
        keys = ("db", "calls", "total_ms", "rows", "query")
        found = cur.fetchall()
    conn.close()
    return [
        dict(zip(keys, (str(v) if i == 2 else v for i, v in enumerate(r)), strict=True))
        for r in found
    ]


def _busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _server_cpu(port: int) -> float:
    """CPU seconds of the PostgreSQL server listening on ``port`` and its processes, ended
    ones included (the postmaster's reaped children), from /proc; 0 if it is not ours."""
    tick = os.sysconf("SC_CLK_TCK")
    with _admin(port) as conn, conn.cursor() as cur:
        cur.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
        data = cur.fetchone()[0]
    conn.close()
    try:
        with open(os.path.join(data, "postmaster.pid")) as f:
            root = int(f.readline())
    except OSError:
        return 0.0
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == root:  # its own time and its ended children's
            total += sum(int(v) for v in fields[11:15])
        elif int(fields[1]) == root:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-port", type=int, required=True)
    parser.add_argument("--restore", default="", help="template prefix, e.g. tpl_")
    parser.add_argument("--profile", default="")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    if args.restore:
        restore(args.pg_port, args.restore)
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{args.pg_port}/mp_bench_app"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")
    import django

    django.setup()
    from runs.models import Run
    from validation.services import run_report_build

    run = Run.objects.order_by("-pk").first()
    conn = _admin(args.pg_port)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_stat_statements_reset()")
    conn.close()
    profile = cProfile.Profile() if args.profile else None
    server = _server_cpu(args.pg_port)
    own = resource.getrusage(resource.RUSAGE_SELF)
    started, busy = time.monotonic(), _busy()
    if profile is not None:
        profile.enable()
    report = run_report_build(run=run, reason="bench.report_again")
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    seconds, busy = time.monotonic() - started, _busy() - busy
    server = _server_cpu(args.pg_port) - server
    after = resource.getrusage(resource.RUSAGE_SELF)
    app = after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(
        json.dumps(
            {
                "run": str(run.uuid),
                "verdict": report.verdict,
                "seconds": round(seconds, 2),
                "machine_busy_cpu_s": round(busy, 1),
                "app_cpu_s": round(app, 2),
                "server_cpu_s": round(server, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "load": load,
                "results": [
                    (r.rule.name, r.status, r.observed)
                    for r in run.validation_results.filter(rule__phase="post")
                ],
                "statements": statements(args.pg_port, args.top),
            },
            indent=1,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
