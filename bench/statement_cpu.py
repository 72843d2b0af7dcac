"""Each statement's backend CPU from a bench server's log (issue 20's accounting of the
target's CPU): run the bench with ``BENCH_PG_OPTS="-c log_statement_stats=on
-c log_min_duration_statement=0 -c log_line_prefix=%p:%d:"`` (getrusage of every statement),
then ``.venv/bin/python -m bench.statement_cpu .data/bench/pgrun/postgres.log mp_bench_target``.

Prints the database's statements grouped by kind with their CPU (user + system) and elapsed
seconds, and per backend its CPU at the last logged statement and what it ran after its last
batch record (the post-run report, outside the run's observation). The log's writing is in
the figures (the batch record's text is logged whole): a measuring run, not one to compare
with a plain bench.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

_HEAD = re.compile(r"^(\d+):([^:]*):(LOG|DETAIL|STATEMENT|ERROR|WARNING):\s+(.*)")
_USAGE = re.compile(r"([\d.]+) s user, ([\d.]+) s system, ([\d.]+) s elapsed")
_TOTAL = re.compile(r"\[([\d.]+) s user, ([\d.]+) s system total\]")


def named_kind(q: str) -> str | None:
    """The name of one of a batch's target statements (``q`` with its whitespace collapsed),
    or None for any other statement. Pure."""
    if q.startswith("COPY mp_load"):
        return "COPY mp_load"
    if q.startswith('INSERT INTO "public"."accounts"'):
        return "INSERT accounts" + (" ON CONFLICT" if "ON CONFLICT" in q else "")
    if q.startswith("SELECT x.mp_ord"):
        return "as-written compare"
    if q.startswith("WITH mp_v"):
        return "ledger record"
    if "FOR UPDATE OF b" in q:
        return "before-images"
    return None


def kind(query: str, width: int = 70) -> str:
    """The kind a statement is summed under: the target's per-batch statements by name, the
    rest by their first ``width`` characters with literals and numbers blanked. Pure."""
    q = re.sub(r"\s+", " ", query).strip()
    if not q:  # the log's first line of a statement that starts with a newline
        return "(a statement starting on a new line: the catalog queries, _UNTOUCHED_SQL)"
    if named := named_kind(q):
        return named
    q = re.sub(r"'[^']*'", "'?'", q)
    return re.sub(r"\b\d+\b", "N", q)[:width]


def read(path: str, database: str) -> list[tuple[str, float, float, float, str]]:
    """(pid, CPU s, elapsed s, the backend's CPU s so far, statement) of each statement of
    ``database`` in the log, in log order."""
    pending: dict[str, list] = {}
    out = []
    pid = None
    with open(path, errors="replace") as f:
        for line in f:
            m = _HEAD.match(line)
            if m:
                pid, db, level, rest = m.groups()
                if level == "LOG" and rest.startswith("QUERY STATISTICS"):
                    pending[pid] = [db, None, None, None]
                elif level == "STATEMENT" and pid in pending and pending[pid][1] is not None:
                    db, cpu, elapsed, total = pending.pop(pid)
                    if db == database:
                        out.append((pid, cpu, elapsed, total, rest))
                continue
            if pid in pending:
                usage = _USAGE.search(line)
                if usage and pending[pid][1] is None:
                    pending[pid][1] = float(usage.group(1)) + float(usage.group(2))
                    pending[pid][2] = float(usage.group(3))
                total = _TOTAL.search(line)
                if total:
                    pending[pid][3] = float(total.group(1)) + float(total.group(2))
    return out


def main() -> None:
    """Print the statements by kind and the backends' CPU."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("database")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    rows = read(args.log, args.database)
    kinds: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    backends: dict[str, list] = defaultdict(list)
    for pid, cpu, elapsed, total, query in rows:
        k = kinds[kind(query)]
        k[0] += 1
        k[1] += cpu
        k[2] += elapsed
        backends[pid].append((cpu, total, query))
    print(
        f"{args.database}: {len(rows)} statements, CPU {sum(r[1] for r in rows):.2f} s, "
        f"elapsed {sum(r[2] for r in rows):.2f} s"
    )
    for pid, seen in backends.items():
        records = [i for i, s in enumerate(seen) if s[2].startswith("WITH mp_v")]
        after = sum(s[0] for s in seen[records[-1] + 1 :]) if records else 0.0
        at = f", at its last batch record {seen[records[-1]][1]:.2f} s" if records else ""
        print(
            f"  backend {pid}: {len(seen)} statements, CPU {seen[-1][1]:.2f} s{at}"
            f" (then {after:.2f} s more)"
        )
    for name, (calls, cpu, elapsed) in sorted(kinds.items(), key=lambda kv: -kv[1][1])[: args.top]:
        print(f"{cpu * 1000:9.0f} ms CPU {elapsed * 1000:9.0f} ms elapsed {calls:6d}  {name}")


if __name__ == "__main__":
    main()
