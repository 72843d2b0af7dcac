"""Cost of the per-batch read-back (issue 14): PostgreSQL -> PostgreSQL, N rows in batches.

Every batch the PostgreSQL loader writes is read back in the same transaction and compared with
the intended values in canonical text (``PostgresConnector._read_back``). This loads N rows of a
typed table (varchar, char(3), numeric(12,2), timestamptz, boolean, uuid, json, text) through
``load_batch`` and times, per batch, the whole ``load_batch`` and the read-back inside it.

Usage: ``.venv/bin/python -m bench.read_back --url postgresql://postgres@127.0.0.1:PORT/postgres
[--rows 100000] [--batch-size 16700]`` (``bash scripts/bench_read_back.sh`` starts a private
server and runs it). Prints one line per batch and the medians; writes nothing else.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any

import psycopg2
import psycopg2.extensions

from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.snapshot import EntitySpec, FieldSpec

COLUMNS = ["ext", "name", "currency", "amount", "seen", "active", "tag", "attrs", "note"]
DDL = (
    "CREATE TABLE typed (id bigserial PRIMARY KEY, ext varchar(20) NOT NULL UNIQUE, "
    "name varchar(60), currency char(3), amount numeric(12,2), seen timestamptz, "
    "active boolean, tag uuid, attrs json, note text)"
)


class TimedConnector(PostgresConnector):
    """The loader with its read-back timed (seconds of the last batch's read-backs)."""

    read_back_seconds = 0.0

    def _read_back(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super()._read_back(*args, **kwargs)
        finally:
            self.read_back_seconds += time.perf_counter() - started

    def _as_written(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()  # the read-back's place where nothing else writes rows
        try:
            return super()._as_written(*args, **kwargs)
        finally:
            self.read_back_seconds += time.perf_counter() - started


def _rows(start: int, n: int) -> Any:
    ids = range(start, start + n)
    return text_frame(
        COLUMNS,
        {
            "ext": [f"B{i:09d}" for i in ids],
            "name": [f"Customer {i} Name" for i in ids],
            "currency": [("USD", "EUR", "GBP")[i % 3] for i in ids],
            "amount": [f"{i % 100000}.{i % 100:02d}" for i in ids],
            "seen": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10:{i % 60:02d}:00Z" for i in ids],
            "active": [("true", "false", "yes")[i % 3] for i in ids],
            "tag": [str(uuid.UUID(int=i)).upper() for i in ids],
            "attrs": [f'{{"n": {i}, "tags": ["a", "b"]}}' for i in ids],
            "note": [None if i % 4 else f"note {i}" for i in ids],
        },
    )


def main() -> None:
    """Load the rows batch by batch into a throwaway database; print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=16_700)
    args = parser.parse_args()
    admin = psycopg2.extensions.parse_dsn(args.url)
    name = f"bench_read_back_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(**admin)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        _run({**admin, "dbname": name}, args.rows, args.batch_size)
    finally:
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def _run(params: dict[str, Any], rows: int, size: int) -> None:
    raw = psycopg2.connect(**params)
    raw.autocommit = True
    raw.cursor().execute(DDL)
    raw.close()
    target = TimedConnector(params)
    entity = EntitySpec(
        name="typed",
        source_table="src",
        target_table="typed",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=tuple(FieldSpec(c, (c,)) for c in COLUMNS),
    )
    totals, reads = [], []
    for n, start in enumerate(range(0, rows, size), 1):
        frame = _rows(start, min(size, rows - start))
        target.read_back_seconds = 0.0
        started = time.perf_counter()
        result = target.load_batch(
            entity=entity,
            rows=frame,
            source_keys=list(frame["ext"]),
            run_id="bench",
            batch_id=f"b{n}",
            namespace="bench",
            result_meta={},
        )
        total = time.perf_counter() - started
        assert result.coerced == 0 and result.inserted == len(frame)
        totals.append(total * 1000)
        reads.append(target.read_back_seconds * 1000)
        print(
            f"batch {n}: {len(frame):,} rows, load_batch {total * 1000:.0f} ms, "
            f"read-back {target.read_back_seconds * 1000:.0f} ms"
        )
    target.close()
    share = statistics.median(r / t for r, t in zip(reads, totals, strict=True))
    print(
        f"{rows:,} rows in {len(totals)} batches of {size:,}: median load_batch "
        f"{statistics.median(totals):.0f} ms, median read-back {statistics.median(reads):.0f} "
        f"ms ({share:.0%} of the batch); read-back total {sum(reads) / 1000:.2f} s of "
        f"{sum(totals) / 1000:.2f} s"
    )


if __name__ == "__main__":
    main()
