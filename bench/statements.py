"""Server statements by time for each phase of our pipeline (run, report, re-run, re-process,
rollback): pg_stat_statements on the bench server (scripts/bench.sh preloads it), reset before a
phase and read after it. Figures only; absent (None) when the extension is not available."""

from __future__ import annotations

import psycopg2

from .measure import Dsn

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
