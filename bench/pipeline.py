"""Our pipeline under measurement: app database, 2 Celery workers, run_plan, reconcile, rollback.

The bench process never imports Django: it drives ``manage.py`` and Celery as subprocesses
(exactly what an operator runs) and reads the run's rows from the app database directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

from mappings.demo import legacy_crm
from runs.engine.connectors import connect

from .measure import (
    Dsn,
    RssPoller,
    machine_busy_seconds,
    parent_pid,
    process_tree,
    tree_cpu_seconds,
)
from .observe import MachineObserver
from .references import ACCOUNT_FIELDS

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
CELERY = PYTHON.parent / "celery"
RECONCILE_CHUNK = 50_000
RECONCILE_SESSIONS = 2  # the machine's cores: the server hashes the chunks


def recreate_database(admin: Dsn, name: str) -> Dsn:
    """DROP (if any) and CREATE database ``name``; returns its DSN."""
    conn = psycopg2.connect(admin.url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return admin.db(name)


def reset_target(target: Dsn) -> None:
    """Empty new-CRM tables and no ledger: the state before a first production load."""
    legacy_crm.build_target(target.url, replace=True)
    with psycopg2.connect(target.url) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS mp_ledger CASCADE")
    conn.close()


@dataclass
class App:
    """The app's environment and the subprocesses it started."""

    db: Dsn
    redis_url: str
    workdir: Path
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.db.url.replace("postgresql://", "postgres://"),
                "REDIS_URL": self.redis_url,
                "MP_DATA_DIR": str(self.workdir / "app"),
                "PYTHONPATH": str(ROOT),
                "DJANGO_SETTINGS_MODULE": "migration_planner.settings",
                "CELERY_TASK_ALWAYS_EAGER": "false",
            }
        )
        return env

    def manage(self, *args: str, log: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run manage.py; output to workdir/<log>.log. Raises RuntimeError when it fails."""
        with open(self.workdir / f"{log}.log", "w") as out:
            proc = subprocess.run(  # noqa: S603 - our interpreter, our arguments
                [str(PYTHON), "manage.py", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if check and proc.returncode:
            tail = (self.workdir / f"{log}.log").read_text()[-3000:]
            raise RuntimeError(f"manage.py {' '.join(args)} exited {proc.returncode}:\n{tail}")
        return proc

    def setup(self, source: Dsn, target: Dsn, batch_size: int) -> dict:
        """Plan with the accounts entity only, at ``batch_size``; returns app_setup's JSON."""
        return self.module(
            "bench.app_setup",
            *("--source-db", source.dbname, "--target-db", target.dbname),
            *("--host", source.host, "--port", str(source.port), "--user", source.user),
            *("--batch-size", str(batch_size)),
        )

    def module(self, name: str, *args: str) -> dict:
        """Run ``python -m name args`` in the app's environment; returns its last JSON line."""
        proc = subprocess.run(  # noqa: S603 - our interpreter, our arguments
            [str(PYTHON), "-m", name, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def start_workers(self, count: int = 2, timeout: float = 90) -> None:
        """Start ``count`` Celery workers (concurrency 1 each); wait until each is ready."""
        for i in range(1, count + 1):
            name = f"w{i}"
            logfile = self.workdir / f"celery-{name}.log"
            logfile.unlink(missing_ok=True)
            self.workers[name] = subprocess.Popen(  # noqa: S603 - our venv's celery
                [
                    str(CELERY),
                    "-A",
                    "migration_planner",
                    "worker",
                    "--concurrency=1",
                    "-n",
                    f"{name}@%h",
                    "--loglevel=INFO",
                    f"--logfile={logfile}",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        for name, proc in self.workers.items():
            logfile = self.workdir / f"celery-{name}.log"
            while not (logfile.exists() and " ready." in logfile.read_text(errors="replace")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Celery worker {name} did not start; see {logfile}")
                time.sleep(0.2)

    def stop_workers(self) -> None:
        """TERM each worker we started (warm shutdown), KILL its tree after 20 s."""
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for pid in reversed(process_tree(proc.pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.wait()
        self.workers.clear()

    def query(self, query: str, params: tuple = ()) -> tuple | None:
        with psycopg2.connect(self.db.url) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            row = cur.fetchone()
        conn.close()
        return row


_RUN_COLS = (
    "uuid",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "source_total",
    "extracted",
    "loaded",
    "inserted",
    "updated",
    "failed",
    "filtered",
    "duplicates",
    "batches_total",
    "error",
)


def latest_run(app: App) -> dict:
    row = app.query(f"SELECT {', '.join(_RUN_COLS)} FROM runs_run ORDER BY id DESC LIMIT 1")
    if row is None:
        raise RuntimeError("run_plan created no run")
    return dict(zip(_RUN_COLS, row, strict=True))


def batch_stats(app: App, run_uuid: str) -> dict:
    """Where the run's time went: engine time per batch (duration_ms covers execute_batch:
    extract, transform, load, ledger) against the span from first claim to last batch end."""
    row = app.query(
        "SELECT count(*), sum(b.duration_ms), max(b.duration_ms), min(b.started_at), "
        "max(b.finished_at), r.started_at, r.finished_at, sum(b.attempts) "
        "FROM runs_batch b JOIN runs_run r ON r.id = b.run_id WHERE r.uuid = %s "
        "GROUP BY r.started_at, r.finished_at",
        (run_uuid,),
    )
    if row is None:
        return {}
    count, total_ms, max_ms, first, last, started, finished, attempts = row
    timeline = app.query(
        "SELECT coalesce(json_agg(json_build_array(b.seq, round(extract(epoch FROM "
        "b.finished_at - r.started_at)::numeric, 1), b.duration_ms, b.failed) "
        "ORDER BY b.finished_at), '[]') FROM runs_batch b JOIN runs_run r ON r.id = b.run_id "
        "WHERE r.uuid = %s AND b.finished_at IS NOT NULL",
        (run_uuid,),
    )
    return {
        # per batch in the order they ended: seq, seconds from the run's start to its end,
        # engine ms, failed rows (a per-batch cost that grows with the run shows here)
        "timeline": timeline[0] if timeline else [],
        "batches": count,
        "attempts": attempts,
        "engine_seconds_sum": (total_ms or 0) / 1000,
        "engine_seconds_max": (max_ms or 0) / 1000,
        "prepare_seconds": (first - started).total_seconds() if first and started else None,
        "batches_span_seconds": (last - first).total_seconds() if first and last else None,
        "finish_seconds": (finished - last).total_seconds() if finished and last else None,
    }


def launch(app: App, plan: str) -> dict:
    """``manage.py run_plan <plan> --wait`` under RSS polling of the workers. Returns the run's
    counters, seconds from launch to finished_at and the workers' memory peaks."""
    roots = {name: proc.pid for name, proc in app.workers.items()}
    postmaster = parent_pid(int(app.query("SELECT pg_backend_pid()")[0]))
    cpu_roots = {**roots, "postgresql": postmaster}
    cpu_before = {n: tree_cpu_seconds(p) for n, p in cpu_roots.items()}
    busy_before = machine_busy_seconds()
    with RssPoller(roots) as poller, MachineObserver(app.db) as observed:
        launched = time.time()
        proc = app.manage("run_plan", plan, "--wait", log="run_plan", check=False)
        returned = time.time()
    busy = machine_busy_seconds() - busy_before
    cpu = {n: round(tree_cpu_seconds(p) - cpu_before[n], 2) for n, p in cpu_roots.items()}
    run = latest_run(app)
    if run["finished_at"] is None:
        raise RuntimeError(f"run {run['uuid']} did not finish: {run['status']} {run['error']}")
    finished = run["finished_at"].timestamp()
    return {
        "run": {
            k: (str(v) if k in ("uuid", "created_at", "started_at", "finished_at") else v)
            for k, v in run.items()
        },
        "exit_code": proc.returncode,
        "seconds": finished - launched,
        "run_seconds": finished - run["created_at"].timestamp(),
        "command_seconds": returned - launched,
        "batch_stats": batch_stats(app, str(run["uuid"])),
        # CPU seconds spent from launch to the command's return (the run_plan process, the
        # workers, every PostgreSQL backend: source, target and app database), and the
        # machine's busy core-seconds in that time: on 2 cores the run is CPU-bound, so this
        # is steadier than the wall time
        "cpu_seconds": {**cpu, "machine_busy": round(busy, 2)},
        # every process on the machine, autovacuum and the server's WAL/buffer counters
        "observed": observed.summary(),
        "workers": {
            n: {
                "peak_tree_rss_mb": p.rss_kb / 1024,
                "peak_tree_pss_mb": p.pss_kb / 1024,
                "peak_process_rss_mb": p.max_process_rss_kb / 1024,
                "samples": p.samples,
                "timeline": p.timeline,
            }
            for n, p in poller.peaks.items()
        },
    }


def wait_report(app: App, run_uuid: str, timeout: float = 3600) -> dict:
    """Wait for the application's own post-run report (the after-run hook builds it in a
    worker: accounting, key-level reconciliation, post checks through the mapping), polling
    the workers' memory meanwhile: the report must stay inside the memory target too."""
    roots = {name: proc.pid for name, proc in app.workers.items()}
    start = time.time()
    row = None
    with RssPoller(roots) as poller:
        while time.time() - start < timeout:
            row = app.query(
                "SELECT r.verdict, r.duration_ms FROM validation_runreport r "
                "JOIN runs_run u ON u.id = r.run_id WHERE u.uuid = %s",
                (run_uuid,),
            )
            if row is not None:
                break
            time.sleep(0.25)
    if row is None:
        raise RuntimeError(f"no report for run {run_uuid} after {timeout:.0f} s")
    return {
        "verdict": row[0],
        "seconds": row[1] / 1000,
        "waited_seconds": time.time() - start,
        "workers": {
            n: {
                "peak_tree_rss_mb": p.rss_kb / 1024,
                "peak_tree_pss_mb": p.pss_kb / 1024,
                "peak_process_rss_mb": p.max_process_rss_kb / 1024,
            }
            for n, p in poller.peaks.items()
        },
    }


def reconcile(target: Dsn, run_uuid: str) -> dict:
    """Re-hash every row the run wrote (connector.row_hashes over the entity's fields, by
    target key in chunks, on RECONCILE_SESSIONS connections at once: the server hashes) and
    compare with the ledger's row hashes; then table_checksum."""
    params = {"host": target.host, "port": target.port, "dbname": target.dbname}
    params["user"] = target.user
    start = time.perf_counter()
    with psycopg2.connect(target.url) as pg, pg.cursor() as cur:
        cur.execute(
            "SELECT target_key, row_hash FROM mp_ledger.written WHERE run_id = %s", (run_uuid,)
        )
        ledger = dict(cur.fetchall())
    pg.close()
    keys = list(ledger)
    parts = [keys[i : i + RECONCILE_CHUNK] for i in range(0, len(keys), RECONCILE_CHUNK)]
    conns = [connect("postgresql", params) for _ in range(RECONCILE_SESSIONS)]
    try:
        found: dict[str, str] = {}

        def hashed(n: int) -> None:  # dict.update of a whole chunk is one step under the GIL
            for part in parts[n::RECONCILE_SESSIONS]:
                found.update(
                    conns[n].row_hashes("accounts", "id", part, columns=list(ACCOUNT_FIELDS))
                )

        with ThreadPoolExecutor(RECONCILE_SESSIONS) as pool:
            list(pool.map(hashed, range(RECONCILE_SESSIONS)))
        mismatched = sum(1 for k, h in ledger.items() if found.get(k) != h)
        hashes_seconds = time.perf_counter() - start
        start = time.perf_counter()
        checksum = conns[0].table_checksum("accounts", ["id"])
        checksum_seconds = time.perf_counter() - start
    finally:
        for conn in conns:
            conn.close()
    return {
        "seconds": hashes_seconds,
        "ledger_rows": len(ledger),
        "rows_found": len(found),
        "mismatched": mismatched,
        "table_checksum_seconds": checksum_seconds,
        "table_checksum_rows": checksum.rows,
        "method": "ledger row_hash vs PostgresConnector.row_hashes(accounts, id, keys, "
        f"columns=entity fields) in chunks of {RECONCILE_CHUNK:,} keys on "
        f"{RECONCILE_SESSIONS} connections",
    }


def rollback(app: App, target: Dsn, run_uuid: str) -> dict:
    """``manage.py rollback_run <uuid> --wait``; seconds of the command and of the Rollback row."""
    start = time.time()
    proc = app.manage("rollback_run", run_uuid, "--wait", log="rollback_run", check=False)
    seconds = time.time() - start
    row = app.query(
        "SELECT r.status, r.started_at, r.finished_at, r.rows_deleted, r.error "
        "FROM runs_rollback r JOIN runs_run u ON u.id = r.run_id "
        "WHERE u.uuid = %s ORDER BY r.id DESC LIMIT 1",
        (run_uuid,),
    )
    with psycopg2.connect(target.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM accounts")
        left = cur.fetchone()[0]
    conn.close()
    if row is None:
        raise RuntimeError(f"rollback_run exited {proc.returncode} and recorded no rollback")
    status, started, finished, deleted, error = row
    return {
        "seconds": seconds,
        "exit_code": proc.returncode,
        "status": status,
        "recorded_seconds": (finished - started).total_seconds() if finished else None,
        "rows_deleted": deleted,
        "target_rows_left": left,
        "error": error,
    }
