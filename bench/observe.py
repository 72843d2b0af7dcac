"""What else the machine and the server did while a phase ran: every process's CPU (grouped,
so another program's load shows by name), autovacuum workers seen, and the server's WAL,
checkpointer and buffer counters (pg_stat_wal, pg_stat_bgwriter, pg_stat_database, and
pg_stat_io where the server has it). Figures only; no Django."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from .measure import Dsn, Periodic, cpu_probe_ms, median, parent_pid, process_tree

TICK = os.sysconf("SC_CLK_TCK")
_PORT = re.compile(r"\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]")
_WAL = (
    "SELECT wal_records, wal_fpi, wal_bytes, wal_buffers_full, wal_write, wal_sync FROM pg_stat_wal"
)
_BGWRITER = (
    "SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean, "
    "buffers_backend, buffers_backend_fsync, buffers_alloc FROM pg_stat_bgwriter"
)
_DATABASE = (
    "SELECT coalesce(sum(blks_read), 0), coalesce(sum(blks_hit), 0), "
    "coalesce(sum(temp_bytes), 0), coalesce(sum(xact_commit), 0) FROM pg_stat_database"
)
_IO = (
    "SELECT backend_type || '/' || object || '/' || context, coalesce(reads, 0), "
    "coalesce(writes, 0), coalesce(extends, 0), coalesce(fsyncs, 0) FROM pg_stat_io"
)
_AUTOVACUUM = (
    "SELECT datname, query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
    "AND state IS DISTINCT FROM 'idle'"
)


def _query(conn, statement: str) -> list[tuple]:
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall()
    except psycopg2.Error:
        return []  # e.g. pg_stat_io before PostgreSQL 16


def server_counters(dsn: Dsn) -> dict:
    """The cluster-wide counters now (WAL, checkpointer/bgwriter, all databases' block reads
    and hits, pg_stat_io rows where present); {} when the server cannot be reached."""
    try:
        conn = psycopg2.connect(dsn.db("postgres").url)
    except psycopg2.Error:
        return {}
    try:
        conn.autocommit = True
        out: dict = {}
        for name, statement, cols in (
            ("wal", _WAL, "records fpi bytes buffers_full write sync"),
            (
                "bgwriter",
                _BGWRITER,
                "ckpt_timed ckpt_req buf_checkpoint buf_clean buf_backend "
                "buf_backend_fsync buf_alloc",
            ),
            ("database", _DATABASE, "blks_read blks_hit temp_bytes commits"),
        ):
            rows = _query(conn, statement)
            if rows:
                out[name] = dict(zip(cols.split(), (float(v) for v in rows[0]), strict=True))
        io = {r[0]: [float(v) for v in r[1:]] for r in _query(conn, _IO)}
        if io:
            out["io"] = io
        return out
    finally:
        conn.close()


def counters_delta(before: dict, after: dict) -> dict:
    """``after`` − ``before``, key by key (pg_stat_io: only the rows that moved)."""
    out: dict = {}
    for name, now in after.items():
        then = before.get(name, {})
        if name == "io":
            moved = {
                k: [round(a - b) for a, b in zip(v, then.get(k, [0] * len(v)), strict=True)]
                for k, v in now.items()
            }
            out[name] = {k: v for k, v in moved.items() if any(v)}
        else:
            out[name] = {k: round(v - then.get(k, 0)) for k, v in now.items()}
    return out


def _label(pid: int) -> str:
    """What a process is: its command line (a PostgreSQL backend's title without the client
    port and state), shortened."""
    try:
        raw = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
        # a kernel thread's or a zombie's cmdline is empty; the process may end meanwhile
        text = raw.strip() or Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
    if text.startswith("postgres:"):
        return _PORT.split(text)[0].strip()[:90]
    head, _, rest = text.partition(" ")
    return f"{os.path.basename(head)} {rest}".strip()[:90]


def _ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime (its own, not reaped children)


def _steal_ticks() -> int:
    values = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return int(values[7]) if len(values) > 7 else 0


def _postmaster(dsn: Dsn) -> int:
    """The bench server's postmaster pid (0 when the server cannot be reached)."""
    try:
        conn = psycopg2.connect(dsn.db("postgres").url)
    except psycopg2.Error:
        return 0
    try:
        rows = _query(conn, "SELECT pg_backend_pid()")
        return parent_pid(int(rows[0][0])) if rows else 0
    finally:
        conn.close()


def _all_ticks() -> dict[int, int]:
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            ticks = _ticks(int(entry.name))
            if ticks is not None:
                out[int(entry.name)] = ticks
    return out


def foreign_cores(postmaster: int, window: float = 2.0) -> tuple[float, str]:
    """Cores used over ``window`` s by processes that are neither this process's tree nor the
    bench server's (``postmaster``), and the busiest of them."""
    before = _all_ticks()
    time.sleep(window)
    after = _all_ticks()
    ours = set(process_tree(os.getpid())) | (set(process_tree(postmaster)) if postmaster else set())
    used = {p: t - before.get(p, 0) for p, t in after.items() if p not in ours}
    busiest = max(used, key=used.get, default=0)
    return sum(used.values()) / TICK / window, _label(busiest) if busiest else ""


def wait_quiet(dsn: Dsn, limit: float = 0.15, patience: float = 600.0) -> tuple[float, float]:
    """Wait (up to ``patience`` s) until other programs use less than ``limit`` cores over 2 s,
    so every measured phase starts on a machine that is the bench's (other helpers' test
    suites share it; the bench lock only keeps benches apart). Returns (seconds waited, the
    foreign cores last seen); gives up silently after ``patience`` (the phase's
    ``foreign_cpu_seconds`` then shows it)."""
    postmaster, started = _postmaster(dsn), time.monotonic()
    while True:
        cores, busiest = foreign_cores(postmaster)
        waited = time.monotonic() - started
        if cores < limit or waited >= patience:
            return waited, cores
        if int(waited) % 30 < 2:
            print(
                f"[bench {time.strftime('%H:%M:%S')}]   waiting for a quiet machine: other "
                f"programs use {cores:.2f} cores (busiest: {busiest[:60]})",
                flush=True,
                file=sys.stderr,
            )


@dataclass
class MachineObserver(Periodic):
    """Every ``interval`` s: each process's CPU ticks (a process that lived between two samples
    is missed, its time counted nowhere), which of them are the bench's (its own process tree
    and the bench server's; every other one is *foreign*: another program, a kernel thread),
    the autovacuum workers at work on ``dsn``'s server;
    every ``probe_every`` samples the CPU probe (bench.measure.cpu_probe_ms, one round: ~60 ms
    of one core), so a machine that runs slower during a phase shows in that phase's figures."""

    dsn: Dsn
    interval: float = 1.0
    probe_every: int = 5
    probes: list[float] = field(default_factory=list)
    samples: int = 0
    first: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    seen: dict[int, list[float]] = field(default_factory=dict)
    ours: set[int] = field(default_factory=set)
    postmaster: int = 0
    autovacuum: Counter = field(default_factory=Counter)
    _conn: object = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = field(default_factory=time.monotonic)

    def __enter__(self):  # noqa: ANN204 - the instance itself
        self.counters_before = server_counters(self.dsn)
        self.steal_before = _steal_ticks()
        with contextlib.suppress(psycopg2.Error):
            self._conn = psycopg2.connect(self.dsn.db("postgres").url)
            self._conn.autocommit = True
            self.postmaster = parent_pid(int(_query(self._conn, "SELECT pg_backend_pid()")[0][0]))
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.steal = (_steal_ticks() - self.steal_before) / TICK
        self.counters = counters_delta(self.counters_before, server_counters(self.dsn))
        if self._conn is not None:
            self._conn.close()

    def sample(self) -> None:
        if self.samples % self.probe_every == 0:
            self.probes.append(cpu_probe_ms(rounds=1))
        self.samples += 1
        primed = bool(self.last)
        self.ours.update(process_tree(os.getpid()))
        if self.postmaster:
            self.ours.update(process_tree(self.postmaster))
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            ticks = _ticks(pid)
            if ticks is None:
                continue
            if pid not in self.first:
                self.first[pid] = 0 if primed else ticks  # 0: born during the phase
                self.labels[pid] = _label(pid)
            self.last[pid] = ticks
            now = round(time.monotonic() - self._started, 1)
            self.seen.setdefault(pid, [now, now])[1] = now
        if self._conn is not None:
            for db, query in _query(self._conn, _AUTOVACUUM):
                self.autovacuum[f"{db}: {query[:80]}"] += 1

    def summary(self, top: int = 12) -> dict:
        """CPU seconds of the foreign processes (and the top 5 of them), of the bench's own
        by process label (the top ``top``, and the rest), steal seconds,
        autovacuum samples (label → seconds seen, at one sample a second) and the server's
        counters over the phase."""
        by_label: Counter = Counter()
        foreign: Counter = Counter()
        for pid, ticks in self.last.items():
            # the bench's own processes by label; another bench's "postgres: postgres
            # mp_bench_target" (same label, another server) is foreign, not ours
            counter = by_label if pid in self.ours else foreign
            counter[self.labels[pid]] += (ticks - self.first[pid]) / TICK
        shown = dict(by_label.most_common(top))
        return {
            "foreign_cpu_seconds": round(sum(foreign.values()), 2),
            "foreign_top": {k: round(v, 2) for k, v in foreign.most_common(5) if v >= 0.05},
            "cpu_by_process": {k: round(v, 2) for k, v in shown.items() if v >= 0.05},
            "cpu_other_processes": round(sum(by_label.values()) - sum(shown.values()), 2),
            "steal_seconds": round(self.steal, 2),
            "cpu_probe_ms": {
                "median": median(self.probes),
                "max": max(self.probes, default=None),
                "n": len(self.probes),
            },
            "autovacuum_seen": dict(self.autovacuum),
            # each of the bench server's processes of ≥ 0.05 CPU-s: label, CPU-s, first and
            # last seen (s into the phase): which connection spent what, and when
            "server_processes": [
                [
                    self.labels[pid],
                    round((ticks - self.first[pid]) / TICK, 2),
                    *self.seen.get(pid, [None, None]),
                ]
                for pid, ticks in sorted(
                    self.last.items(), key=lambda kv: self.seen.get(kv[0], [0])[0]
                )
                if pid in self.ours
                and self.labels[pid].startswith("postgres")
                and (ticks - self.first[pid]) / TICK >= 0.05
            ],
            "server": self.counters,
        }
