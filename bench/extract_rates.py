"""Source extract rates: the same demo legacy CRM read by the MySQL and PostgreSQL connectors.

Usage (servers of your own; each gets a database ``mp_extract_rates`` built and dropped):
    python -m bench.extract_rates --mysql mysql://root@127.0.0.1:3306/ \
        --pg postgresql://postgres@127.0.0.1:5432/postgres [--rows 200000] [--repeat 3]

Reads every table in 20,000-row keyset batches through ``extract_text`` (what a run does) and
prints rows/s and the client's CPU seconds, best of ``--repeat``. Not a test.
"""

from __future__ import annotations

import argparse
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pymysql

from mappings.demo import legacy_crm
from runs.engine.connectors import connect

DB = "mp_extract_rates"
KEYS = {"customers": "Customer_ID", "contacts": "Contact_ID", "orders": "Order_ID"}


def _params(url: str) -> dict:
    u = urlsplit(url)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port,
        "user": u.username,
        "password": u.password or "",
        "dbname": DB,
    }


def _admin(kind: str, url: str, statement: str) -> None:
    p = _params(url)
    if kind == "mysql":
        conn = pymysql.connect(
            host=p["host"],
            port=p["port"] or 3306,
            user=p["user"],
            password=p["password"],
            autocommit=True,
        )
    else:
        conn = psycopg2.connect(url)
        conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def measure(kind: str, url: str, rows: int, repeat: int) -> tuple[int, float, float]:
    """(rows read, best wall seconds, that run's client CPU seconds) for one server."""
    quote = "`" if kind == "mysql" else '"'
    _admin(kind, url, f"DROP DATABASE IF EXISTS {quote}{DB}{quote}")
    _admin(kind, url, f"CREATE DATABASE {quote}{DB}{quote}")
    try:
        legacy_crm.build_source(
            urlunsplit(urlsplit(url)._replace(path=f"/{DB}")), rows=rows, seed=7
        )
        best = None
        for _ in range(repeat):
            conn = connect(kind, _params(url))
            schema = conn.introspect()
            wall, cpu, n = time.perf_counter(), time.process_time(), 0
            for table, key in KEYS.items():
                cols = list(schema.table(table).column_names)
                for key_range in conn.key_ranges(table, [key], 20_000):
                    n += len(conn.extract_text(table, cols, [key], key_range))
            result = (n, time.perf_counter() - wall, time.process_time() - cpu)
            conn.close()
            if best is None or result[1] < best[1]:
                best = result
        assert best is not None
        return best
    finally:
        _admin(kind, url, f"DROP DATABASE IF EXISTS {quote}{DB}{quote}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql", required=True, help="mysql://user[:password]@host:port/")
    parser.add_argument("--pg", required=True, help="postgresql://user@host:port/postgres")
    parser.add_argument("--rows", type=int, default=200_000, help="customers (x6 rows in all)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for kind, url in (("mysql", args.mysql), ("postgresql", args.pg)):
        n, wall, cpu = measure(kind, url, args.rows, args.repeat)
        print(
            f"{kind:>10}: {n:,} rows in {wall:.2f} s ({n / wall:,.0f} rows/s), "
            f"client CPU {cpu:.2f} s (best of {args.repeat})"
        )


if __name__ == "__main__":
    main()
