"""Server statements by time for each phase of our pipeline (run, report, re-run, re-process,
rollback): pg_stat_statements on the bench server (scripts/bench.sh preloads it), reset before a
phase and read after it. Figures only; absent (None) when the extension is not available."""

from __future__ import annotations

import threading
import time

import psycopg2

from .measure import Dsn, Periodic

TOP = 12

_TOP_SQL = (
    "SELECT d.datname, s.calls, s.total_exec_time, s.rows, left(regexp_replace(s.query, "
    "'\\s+', ' ', 'g'), 240) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
    "WHERE s.query NOT ILIKE '%%pg_stat_statements%%' ORDER BY s.total_exec_time DESC LIMIT %s"
)


def _run(dsn: Dsn, statement: str, params: tuple = ()) -> list[tuple] | None:
    try:
        conn = psycopg2.connect(dsn.db("postgres").url)
    except psycopg2.Error:
        return None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    except psycopg2.Error:
        return None
    finally:
        conn.close()


def statements_reset(dsn: Dsn) -> bool:
    """Start a phase: the extension created if needed, its counters emptied; False if absent."""
    if _run(dsn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements") is None:
        return False
    return _run(dsn, "SELECT pg_stat_statements_reset()") is not None


def statements_top(dsn: Dsn, limit: int = TOP) -> dict | None:
    """The phase's statements by total execution time (all databases), and their total."""
    rows = _run(dsn, _TOP_SQL, (limit,))
    total = _run(
        dsn,
        "SELECT coalesce(sum(total_exec_time), 0), coalesce(sum(calls), 0) "
        "FROM pg_stat_statements WHERE query NOT ILIKE '%%pg_stat_statements%%'",
    )
    if rows is None or not total:
        return None
    return {
        "total_ms": round(float(total[0][0]), 1),
        "calls": int(total[0][1]),
        "top": [
            {"db": db, "calls": calls, "total_ms": round(ms, 1), "rows": n, "query": query}
            for db, calls, ms, n, query in rows
        ],
    }


_ALL_SQL = (
    "SELECT d.datname, s.calls, s.plans, s.total_plan_time, s.total_exec_time, s.rows, "
    "left(regexp_replace(s.query, '\\s+', ' ', 'g'), 200) FROM pg_stat_statements s JOIN "
    "pg_database d ON d.oid = s.dbid WHERE s.query NOT ILIKE '%%pg_stat_statements%%' "
    "ORDER BY s.total_exec_time + s.total_plan_time DESC"
)


def statements_all(dsn: Dsn) -> list[dict] | None:
    """Every statement since the last reset with its planning and execution time (planning is
    counted where the server runs with ``pg_stat_statements.track_planning``)."""
    rows = _run(dsn, _ALL_SQL)
    if rows is None:
        return None
    return [
        {
            "db": db,
            "calls": calls,
            "plans": plans,
            "plan_ms": round(plan, 2),
            "exec_ms": round(ms, 2),
            "rows": n,
            "query": query,
        }
        for db, calls, plans, plan, ms, n, query in rows
    ]


_GROUPED_SQL = (
    "SELECT d.datname, sum(s.calls), sum(s.total_exec_time), count(*), left(regexp_replace("
    "s.query, '\\s+', ' ', 'g'), %s) AS q FROM pg_stat_statements s JOIN pg_database d "
    "ON d.oid = s.dbid WHERE s.query NOT ILIKE '%%pg_stat_statements%%' GROUP BY 1, 5 "
    "ORDER BY 3 DESC LIMIT %s"
)


def statements_grouped(dsn: Dsn, prefix: int = 90, limit: int = 20) -> list[dict] | None:
    """The statements since the last reset grouped by their first ``prefix`` characters: a
    per-batch statement whose text varies (an ARRAY[...] of another length is another
    statement to pg_stat_statements) shows as one line with its summed time."""
    rows = _run(dsn, _GROUPED_SQL, (prefix, limit))
    if rows is None:
        return None
    return [
        {
            "db": db,
            "calls": int(calls),
            "total_ms": round(float(ms), 1),
            "texts": int(n),
            "query": q,
        }
        for db, calls, ms, n, q in rows
    ]


_SNAPSHOT_SQL = (
    "SELECT s.queryid, d.datname, s.calls, s.total_exec_time, left(regexp_replace(s.query, "
    "'\\s+', ' ', 'g'), 160) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
    "WHERE s.query NOT ILIKE '%%pg_stat_statements%%'"
)


class StatementSampler(Periodic):
    """pg_stat_statements read every ``interval`` s on a thread during a phase: how each
    statement's mean time moves over the phase (a per-batch statement whose cost grows with
    the run shows here; the phase totals of ``statements_top`` do not show it)."""

    def __init__(self, dsn: Dsn, interval: float = 30.0) -> None:
        self.dsn, self.interval = dsn, interval
        self.snapshots: list[tuple[float, dict]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    def sample(self) -> None:
        rows = _run(self.dsn, _SNAPSHOT_SQL)
        if rows is not None:
            at = round(time.monotonic() - self._started, 1)
            self.snapshots.append((at, {(q, db): (c, t, text) for q, db, c, t, text in rows}))

    def timeline(self, limit: int = TOP) -> dict:
        """The ``limit`` statements with the most time over the phase, each with its calls and
        mean ms per call in every interval (``ends``: seconds since the start of each)."""
        if len(self.snapshots) < 2:
            return {"ends": [], "statements": []}
        first, last = self.snapshots[0][1], self.snapshots[-1][1]

        def total(key: tuple) -> float:
            return last[key][1] - first.get(key, (0, 0.0, ""))[1]

        out = []
        for key in sorted(last, key=total, reverse=True)[:limit]:
            calls, means = [], []
            for (_, before), (_, after) in zip(self.snapshots, self.snapshots[1:], strict=False):
                c0, t0, _ = before.get(key, (0, 0.0, ""))
                c1, t1, _ = after.get(key, (c0, t0, ""))
                calls.append(c1 - c0)
                means.append(round((t1 - t0) / (c1 - c0), 2) if c1 > c0 else None)
            out.append(
                {
                    "db": key[1],
                    "query": last[key][2],
                    "total_ms": round(total(key), 1),
                    "calls": calls,
                    "mean_ms": means,
                }
            )
        return {"ends": [at for at, _ in self.snapshots[1:]], "statements": out}
