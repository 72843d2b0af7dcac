"""Measuring helpers: DSNs, process-tree memory polling, machine facts. No Django."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2


@dataclass(frozen=True)
class Dsn:
    host: str
    port: int
    user: str
    dbname: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def db(self, dbname: str) -> Dsn:
        return Dsn(self.host, self.port, self.user, dbname)


def settle_server(dsn: Dsn) -> float:
    """Bring the bench server to the same quiet state before each measured phase: VACUUM
    (ANALYZE) in every database (the work autovacuum would otherwise do during the next phase,
    on the tables the previous one loaded), then CHECKPOINT. Idempotent (no data changes);
    raises psycopg2 errors. Returns the seconds it took (part of no figure)."""
    started = time.perf_counter()
    conn = psycopg2.connect(dsn.db("postgres").url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
                "ORDER BY datname"
            )
            names = [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
    for name in names:
        db = psycopg2.connect(dsn.db(name).url)
        try:
            db.autocommit = True
            with db.cursor() as cur:
                cur.execute("VACUUM (ANALYZE)")
                if name == names[-1]:
                    cur.execute("CHECKPOINT")
        finally:
            db.close()
    return time.perf_counter() - started


def cpu_probe_ms(rounds: int = 3) -> float:
    """The CPU milliseconds (the calling thread's own, not wall, not the other threads' of the
    bench such as its memory poller) a fixed piece of work takes, the
    best of ``rounds``: sha256 over 64 kB, 1,000 times, and 200,000 turns of a Python loop that
    formats and hashes integers. The same work on the same machine takes
    the same CPU time unless the core itself runs slower (a busy hyperthread sibling or host,
    a lower clock), which steal time does not always show. Recorded before each measured phase,
    so a ratio between two phases can be checked for having seen the same machine."""
    block = bytes(range(256)) * 256
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        for _ in range(1000):
            hashlib.sha256(block).digest()
        seen: dict[int, int] = {}
        for i in range(200_000):
            seen[hash(str(i)) & 1023] = i
        best = min(best, time.thread_time() - started)
    return round(best * 1000, 1)


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` from /proc/<pid>/statm (resident pages: the same counter as
    /proc/<pid>/status's VmRSS, without formatting the ~50 other lines of status), 0 when gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (through /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            with contextlib.suppress(OSError, ValueError):
                children = Path(f"/proc/{p}/task/{tid}/children").read_text().split()
                todo += [int(c) for c in children]
    return out


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (field 3 on), [] when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime (reaped children) of one process, in clock ticks."""
    fields = _stat_fields(pid)
    return sum(int(v) for v in fields[11:15]) if fields else 0  # stat fields 14-17


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid``'s tree: live processes plus the children they have
    reaped (a PostgreSQL backend's time lands in the postmaster's when the backend exits)."""
    return sum(_cpu_ticks(p) for p in process_tree(pid)) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent not idle since boot (/proc/stat: all but idle, iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def parent_pid(pid: int) -> int:
    """The parent of ``pid`` (0 when it is gone)."""
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


@dataclass
class TreePeak:
    rss_kb: int = 0  # peak of the tree's summed VmRSS (shared pages counted in each process)
    pss_kb: int = 0  # peak of the tree's summed PSS (shared pages divided among sharers)
    max_process_rss_kb: int = 0  # peak VmRSS of any single process of the tree
    samples: int = 0
    # (seconds since start, tree RSS MB, largest process RSS MB) once a second: where the peak is
    timeline: list[tuple[float, int, int]] = field(default_factory=list)


class Periodic:
    """``sample()`` on entering, every ``interval`` s on a thread, and on leaving (the
    subclass sets ``interval``, ``_stop`` (an Event), ``_thread`` and ``_started``)."""

    interval: float
    _stop: threading.Event
    _thread: threading.Thread | None
    _started: float

    def sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):  # noqa: ANN204 - the subclass itself
        self._started = time.monotonic()
        self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


@dataclass
class RssPoller(Periodic):
    """Poll the memory of some process trees every ``interval`` s on a thread until stopped.

    Each sample reads every tree process's RSS from /proc/<pid>/statm (a counter: ~0.02 ms).
    PSS (/proc/<pid>/smaps_rollup walks the page tables: ~5 ms per 100 MB mapped, most of
    this poller's CPU when it was read every sample) is read every ``pss_every`` samples and
    whenever the tree's RSS has grown by ``pss_growth`` or more since the last PSS read, so
    the PSS peak is still taken where the memory peaks. The tree itself (a /proc read per
    thread) is walked again every ``tree_every`` samples, and at once when one of its
    processes is gone."""

    roots: dict[str, int]
    interval: float = 0.2
    pss_every: int = 25
    pss_growth: float = 0.02
    tree_every: int = 5
    peaks: dict[str, TreePeak] = field(default_factory=dict)
    pss_reads: int = 0  # smaps_rollup reads (tests count them)
    _trees: dict[str, list[int]] = field(default_factory=dict)
    _pss_at: dict[str, int] = field(default_factory=dict)  # tree RSS at the last PSS read
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = field(default_factory=time.monotonic)

    def sample(self) -> None:
        for name, root in self.roots.items():
            peak = self.peaks.setdefault(name, TreePeak())
            pids = self._trees.get(name)
            if pids is None or peak.samples % self.tree_every == 0:
                pids = self._trees[name] = process_tree(root)
            rss = [_rss_kb(p) for p in pids]
            if 0 in rss:  # a process ended (or a new one may have come): read the tree again
                pids = self._trees[name] = process_tree(root)
                rss = [_rss_kb(p) for p in pids]
            total = sum(rss)
            grown = total >= self._pss_at.get(name, 0) * (1 + self.pss_growth)
            if grown or peak.samples % self.pss_every == 0:
                self.pss_reads += len(pids)
                self._pss_at[name] = total
                peak.pss_kb = max(peak.pss_kb, sum(_pss_kb(p) for p in pids))
            peak.rss_kb = max(peak.rss_kb, total)
            peak.max_process_rss_kb = max(peak.max_process_rss_kb, max(rss, default=0))
            peak.samples += 1
            at = time.monotonic() - self._started
            if not peak.timeline or at - peak.timeline[-1][0] >= 1.0:
                peak.timeline.append((round(at, 1), total >> 10, max(rss, default=0) >> 10))


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def machine_facts(dsn: Dsn) -> dict:
    """nproc, RAM, CPU model, kernel, Python and the PostgreSQL server version and settings."""
    mem_kb = _meminfo_kb("MemTotal")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    with psycopg2.connect(dsn.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT version()")
        version = cur.fetchone()[0]
        cur.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)",
            (
                [
                    "shared_buffers",
                    "fsync",
                    "synchronous_commit",
                    "max_wal_size",
                    "work_mem",
                    "full_page_writes",
                ],
            ),
        )
        settings = {n: f"{s}{' ' + u if u else ''}" for n, s, u in cur.fetchall()}
    conn.close()
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": version,
        "postgresql_settings": settings,
    }


def _meminfo_kb(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0
