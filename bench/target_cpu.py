"""The target backend's CPU per batch (issue 20): the bench's ``accounts`` table, N rows in
batches through ``load_batch`` (upsert, row state, ``skip_unchanged`` as the run passes it).

Prints, per batch, the backend's CPU (``/proc/<pid>/schedstat`` of the loader's backend: the server
must run on this host) and, at the end, its total and pg_stat_statements' time grouped by
statement kind (the temp table's OID differs per batch, so each batch's statements are their
own entries; they are summed here by their first words).

Usage: ``.venv/bin/python -m bench.target_cpu --url postgresql://postgres@127.0.0.1:PORT/postgres
[--rows 167000] [--batch-size 16700] [--label NAME]``; creates and drops its own database.
"""

from __future__ import annotations

import argparse
import re
import statistics
import uuid
from typing import Any

import psycopg2
import psycopg2.extensions

from mappings.demo.legacy_crm.schema import TARGET_SCHEMA, _ddl
from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.snapshot import EntitySpec, FieldSpec
from runs.engine.unchanged import RowState

from .statement_cpu import named_kind

COLUMNS = [c.name for c in TARGET_SCHEMA["accounts"] if c.name != "id"]


def _rows(start: int, n: int, notes: bool = False) -> Any:
    """Rows shaped like the demo transform's output for customers -> accounts; ``notes``: every
    7th description with a newline and a backslash, as the demo's notes have (such a batch
    cannot go in COPY's unescaped text format)."""
    ids = range(start + 1, start + n + 1)
    extra = "\nsee C:\\legacy" if notes else ""
    return text_frame(
        COLUMNS,
        {
            "account_number": [str(i) for i in ids],
            "name": [f"Customer Number {i} Holdings" for i in ids],
            "billing_street": [f"{i % 9000 + 100} Main Street, Suite {i % 300}" for i in ids],
            "billing_city": [("Springfield", "Riverside", "Franklin")[i % 3] for i in ids],
            "billing_state": [("California", "Texas", "New York")[i % 3] for i in ids],
            "billing_postal_code": [f"{i % 100000:05d}" for i in ids],
            "phone": [f"(555) {i % 1000:03d}-{i % 10000:04d}" for i in ids],
            "email": [f"customer{i}@example.com" for i in ids],
            "legacy_created_date": [
                f"20{10 + i % 14}-{1 + i % 12:02d}-{1 + i % 28:02d} 00:00:00" for i in ids
            ],
            "account_status": [("Active", "Inactive")[i % 2] for i in ids],
            "description": [
                None
                if i % 20 == 0
                else ("Net 30 terms", "VIP\tdo not call")[i % 2] + (extra if i % 7 == 0 else "")
                for i in ids
            ],
            "legacy_uuid": [str(uuid.uuid5(uuid.NAMESPACE_OID, str(i))) for i in ids],
        },
    )


def _cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` (/proc/<pid>/schedstat: nanoseconds on a CPU)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def _kind(query: str) -> str:
    """The statement kind a pg_stat_statements query text is summed under."""
    q = re.sub(r"\s+", " ", query).strip()
    return named_kind(q) or q[:60]


def main() -> None:
    """Load the rows batch by batch into a throwaway database; print CPU and statements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", type=int, default=167_000)
    parser.add_argument("--batch-size", type=int, default=16_700)
    parser.add_argument("--label", default="")
    parser.add_argument("--notes", action="store_true", help="descriptions with newlines")
    parser.add_argument(
        "--csv", action="store_true", help="a batch needing escapes as CSV (before 7f81462)"
    )
    args = parser.parse_args()
    if args.csv:  # the COPY as it was: the all-quoted CSV for a batch needing escapes
        from runs.engine.connectors.postgres import operations, target

        def as_csv(arrays: Any) -> tuple[str, bytes]:
            data = operations.copy_text_bytes(arrays)
            if data is not None:
                return operations.COPY_TEXT_OPTIONS, data
            return "FORMAT csv", operations.csv_bytes(arrays)

        target.load_copy = as_csv
    admin = psycopg2.extensions.parse_dsn(args.url)
    name = f"bench_target_cpu_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(**admin)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        _run({**admin, "dbname": name}, args)
    finally:
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def _run(params: dict[str, Any], args: argparse.Namespace) -> None:
    """Create the demo's accounts and contacts tables in the database of ``params``, load
    ``args.rows`` rows in batches and print the backend's CPU and the statements."""
    raw = psycopg2.connect(**params)
    raw.autocommit = True
    cur = raw.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    for table in ("accounts", "contacts"):
        for stmt in _ddl("postgresql", table, TARGET_SCHEMA[table]):
            cur.execute(stmt)
    target = PostgresConnector(params)
    entity = EntitySpec(
        name="accounts",
        source_table="customers",
        target_table="accounts",
        source_key=("account_number",),
        target_key="id",
        external_id="account_number",
        load_mode="upsert",
        fields=tuple(FieldSpec(c, (c,)) for c in COLUMNS),
    )
    pid = target._connection().get_backend_pid()
    cur.execute("SELECT pg_stat_statements_reset()")
    cpus = []
    for n, start in enumerate(range(0, args.rows, args.batch_size), 1):
        frame = _rows(start, min(args.batch_size, args.rows - start), args.notes)
        keys = list(frame["account_number"])
        state = RowState("r", [f"{i:032x}" for i in range(len(keys))], keys[0], keys[-1])
        before = _cpu(pid)
        result = target.load_batch(
            entity=entity,
            rows=frame,
            source_keys=keys,
            run_id="bench",
            batch_id=f"b{n}",
            namespace="bench",
            result_meta={},
            skip_unchanged=True,
            row_state=state,
        )
        cpus.append((_cpu(pid) - before) * 1000)
        assert result.coerced == 0 and result.inserted == len(frame), result
    target.close()
    cur.execute(
        "SELECT query, calls, total_exec_time, total_plan_time FROM pg_stat_statements s "
        "JOIN pg_database d "
        "ON d.oid = s.dbid WHERE d.datname = current_database()"
    )
    kinds: dict[str, list[float]] = {}
    for query, calls, total, plan in cur.fetchall():
        k = kinds.setdefault(_kind(query), [0, 0.0, 0.0])
        k[0] += calls
        k[1] += total
        k[2] += plan
    raw.close()
    batches = len(cpus)
    each = ", ".join(f"{c:.0f}" for c in cpus)
    print(
        f"{args.label} {args.rows:,} rows, {batches} batches: backend CPU {sum(cpus) / 1000:.2f} s,"
        f" per batch median {statistics.median(cpus):.0f} ms ({each})"
    )
    ex = sum(v[1] for v in kinds.values()) / batches
    pl = sum(v[2] for v in kinds.values()) / batches
    print(f"  statements a batch: {ex:.1f} ms executing, {pl:.1f} ms planning (track_planning)")
    for k, (calls, total, plan) in sorted(kinds.items(), key=lambda kv: -kv[1][1])[:12]:
        per, planned = total / batches, plan / batches
        print(f"  {per:7.1f} ms/batch  {planned:5.1f} plan  {calls:5d} calls  {k}")


if __name__ == "__main__":
    main()
