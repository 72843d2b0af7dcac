"""The references our pipeline is measured against, on the same data and server.

1. raw pipe: ``COPY (SELECT …) TO STDOUT | COPY accounts_raw FROM STDIN`` (two psql processes);
2. SQL pipe: the accounts entity's rules written well in SQL inside the first COPY;
3. pgloader: its plain PostgreSQL → PostgreSQL copy of ``customers`` (over 127.0.0.1 TCP).

No Django. Identifiers come from ``legacy_crm``'s schema constants and are quoted through
``psycopg2.sql``; the transforming SQL below is static text with quoted identifiers.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from mappings.demo import legacy_crm

from .measure import Dsn

PLAN_SLUG = "legacy-crm-to-new-crm"
ACCOUNT_FIELDS = (
    "account_number",
    "name",
    "billing_street",
    "billing_city",
    "billing_state",
    "billing_postal_code",
    "phone",
    "email",
    "legacy_created_date",
    "account_status",
    "description",
    "legacy_uuid",
)
# demo_plan.STATUS_MAP, repeated here because demo_plan imports Django; run_bench checks that
# the installed plan's lookups equal these before it trusts the SQL reference.
STATUS_MAP = {"1": "Active", "0": "Inactive", "A": "Active", "I": "Inactive"}
_PG_TYPES = {"ID": "INTEGER PRIMARY KEY", "AUTO_ID": "BIGSERIAL PRIMARY KEY"}
_EMAIL_RE = (
    r"^[a-z0-9\u00c0-\uffff!#%&'*+/=?^_`{|}~.-]+@[a-z0-9\u00c0-\uffff-]+"
    r"(\.[a-z0-9\u00c0-\uffff-]+)*\.[a-z\u00c0-\uffff]{2,}$"
)


@dataclass
class RefResult:
    name: str
    seconds: float
    rows: int
    peak_rss_mb: float | None = None
    note: str = ""


def uuid_namespace(plan_slug: str, scope: str) -> uuid.UUID:
    """The namespace the uuid_from_key rule uses (rules._uuid_namespace)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"migration-planner:{plan_slug}/{scope}")


def _col_ddl(col: legacy_crm.Col) -> sql.Composable:
    parts = [sql.Identifier(col.name), sql.SQL(_PG_TYPES.get(col.type, col.type))]
    parts += [sql.SQL("NOT NULL")] * (not col.null) + [sql.SQL("UNIQUE")] * col.unique
    return sql.SQL(" ").join(parts)


def create_table_like(conn, name: str, cols: tuple[legacy_crm.Col, ...]) -> None:
    """(Re)create ``name`` with the column definitions of a legacy_crm schema table."""
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        cur.execute(
            sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(name), sql.SQL(", ").join(map(_col_ddl, cols))
            )
        )


def prepare(source: Dsn, target: Dsn) -> None:
    """Reference tables in the target (empty) and uuid-ossp in the source. Idempotent."""
    with psycopg2.connect(source.url) as conn, conn.cursor() as cur:
        cur.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    conn.close()
    conn = psycopg2.connect(target.url)
    try:
        create_table_like(conn, "accounts_raw", legacy_crm.SOURCE_SCHEMA["customers"])
        create_table_like(conn, "accounts_sql", legacy_crm.TARGET_SCHEMA["accounts"])
    finally:
        conn.close()


def _values(pairs: dict[str, str]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(k), sql.Literal(v)) for k, v in sorted(pairs.items())
    )


_TRANSFORM = """
SELECT c."Customer_ID"::text, n.name, n.street, n.city, st.state_name, n.zip,
       CASE WHEN n.digits ~ '^[0-9]{{10}}$' THEN '(' || substr(n.digits, 1, 3) || ') '
            || substr(n.digits, 4, 3) || '-' || substr(n.digits, 7, 4) END,
       n.email, d.ts, ss.status, left(c."Legacy_Notes", 32000),
       uuid_generate_v5({ns}::uuid, c."Customer_ID"::text)
FROM customers c
CROSS JOIN LATERAL (SELECT
    initcap(nullif(btrim(regexp_replace(c."Cust_Name", '\\s+', ' ', 'g')), '')) AS name,
    left(nullif(btrim(regexp_replace(concat_ws(', ', nullif(btrim(c."Address_Line1"), ''),
         nullif(btrim(c."Address_Line2"), '')), '\\s+', ' ', 'g')), ''), 255) AS street,
    left(initcap(nullif(btrim(regexp_replace(c."City", '\\s+', ' ', 'g')), '')), 40) AS city,
    upper(nullif(btrim(regexp_replace(c."State_Code", '\\s+', ' ', 'g')), '')) AS state_code,
    nullif(btrim(regexp_replace(c."Zip_Code", '\\s+', ' ', 'g')), '') AS zip,
    nullif(btrim(c."Phone_Number"), '') AS phone_raw,
    regexp_replace(regexp_replace(c."Phone_Number", '[^0-9]', '', 'g'),
                   '^1([0-9]{{10}})$', '\\1') AS digits,
    nullif(lower(btrim(c."Email_Address")), '') AS email,
    upper(nullif(btrim(regexp_replace(c."Status", '\\s+', ' ', 'g')), '')) AS status_code,
    nullif(btrim(c."Creation_Date"), '') AS cd OFFSET 0) n
CROSS JOIN LATERAL (SELECT CASE
    WHEN n.cd ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}$' THEN ARRAY[
        substr(n.cd, 1, 4), substr(n.cd, 6, 2), substr(n.cd, 9, 2), substr(n.cd, 12, 2),
        substr(n.cd, 15, 2), '0']::int[]
    WHEN n.cd ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}$' THEN ARRAY[
        substr(n.cd, 1, 4), substr(n.cd, 6, 2), substr(n.cd, 9, 2), substr(n.cd, 12, 2),
        substr(n.cd, 15, 2), substr(n.cd, 18, 2)]::int[]
    WHEN n.cd ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' THEN ARRAY[
        substr(n.cd, 1, 4), substr(n.cd, 6, 2), substr(n.cd, 9, 2), '0', '0', '0']::int[]
    WHEN n.cd ~ '^[0-9]{{2}}/[0-9]{{2}}/[0-9]{{4}}$' THEN ARRAY[
        substr(n.cd, 7, 4), substr(n.cd, 1, 2), substr(n.cd, 4, 2), '0', '0', '0']::int[]
    WHEN n.cd ~ '^[0-9]{{2}}[.][0-9]{{2}}[.][0-9]{{4}}$' THEN ARRAY[
        substr(n.cd, 7, 4), substr(n.cd, 4, 2), substr(n.cd, 1, 2), '0', '0', '0']::int[]
    WHEN n.cd ~* '^[a-z]{{3}} [0-9]{{2}} [0-9]{{4}}$' THEN ARRAY[
        substr(n.cd, 8, 4), array_position('{{jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec}}'
        ::text[], lower(substr(n.cd, 1, 3)))::text, substr(n.cd, 5, 2), '0', '0', '0']::int[]
    END AS p OFFSET 0) dp
CROSS JOIN LATERAL (SELECT CASE WHEN dp.p[2] BETWEEN 1 AND 12 AND dp.p[3] >= 1
    AND dp.p[3] <= (ARRAY[31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[dp.p[2]]
        + (dp.p[2] = 2 AND dp.p[1] % 4 = 0 AND (dp.p[1] % 100 <> 0 OR dp.p[1] % 400 = 0))::int
    AND dp.p[4] < 24 AND dp.p[5] < 60 AND dp.p[6] < 60
    THEN make_timestamp(dp.p[1], dp.p[2], dp.p[3], dp.p[4], dp.p[5], dp.p[6]) END AS ts
    OFFSET 0) d
LEFT JOIN (VALUES {states}) st(code, state_name) ON st.code = n.state_code
LEFT JOIN (VALUES {statuses}) ss(code, status) ON ss.code = n.status_code
WHERE n.name IS NOT NULL AND length(n.name) <= 80
  AND (n.state_code IS NULL OR st.state_name IS NOT NULL)
  AND (n.zip IS NULL OR n.zip ~ '^[0-9]{{5}}(-[0-9]{{4}})?$')
  AND (n.phone_raw IS NULL OR n.digits ~ '^[0-9]{{10}}$')
  AND (n.email IS NULL OR (n.email ~ {email_re} AND strpos(n.email, '..') = 0
                           AND length(n.email) <= 80))
  AND (n.cd IS NULL OR d.ts IS NOT NULL)
  AND ss.status IS NOT NULL
"""


def transform_sql() -> sql.Composable:
    """The accounts entity's rules as one SELECT over customers (failing rows filtered out)."""
    return sql.SQL(_TRANSFORM).format(
        ns=sql.Literal(str(uuid_namespace(PLAN_SLUG, "accounts"))),
        states=_values(legacy_crm.US_STATES),
        statuses=_values(STATUS_MAP),
        email_re=sql.Literal(_EMAIL_RE),
    )


def _render(dsn: Dsn, query: sql.Composable) -> str:
    conn = psycopg2.connect(dsn.url)
    try:
        return query.as_string(conn)
    finally:
        conn.close()


def _psql(dsn: Dsn, command: str, *, quiet: bool = True) -> list[str]:
    return [
        "psql",
        "-X",
        *(["-q"] if quiet else []),
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        dsn.host,
        "-p",
        str(dsn.port),
        "-U",
        dsn.user,
        "-d",
        dsn.dbname,
        "-c",
        command,
    ]


def psql_pipe(source: Dsn, target: Dsn, out_sql: str, in_sql: str) -> tuple[float, int]:
    """Run ``psql -c out_sql | psql -c in_sql``; returns (seconds, rows copied). Raises
    RuntimeError when either side fails."""
    start = time.perf_counter()
    # The commands are our own SQL text, passed as one argv element (no shell).
    out = subprocess.Popen(_psql(source, out_sql), stdout=subprocess.PIPE)  # noqa: S603
    inp = subprocess.Popen(  # noqa: S603
        _psql(target, in_sql, quiet=False),
        stdin=out.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert out.stdout is not None
    out.stdout.close()
    stdout, stderr = inp.communicate()
    out.wait()
    seconds = time.perf_counter() - start
    if out.returncode or inp.returncode:
        raise RuntimeError(f"pipe failed ({out.returncode}/{inp.returncode}): {stderr[-2000:]}")
    match = re.search(r"COPY (\d+)", stdout)
    return seconds, int(match.group(1)) if match else -1


def _truncate(target: Dsn, table: str) -> None:
    with psycopg2.connect(target.url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.Identifier(table)))
    conn.close()


def raw_pipe(source: Dsn, target: Dsn) -> RefResult:
    """COPY every customers column out and into accounts_raw, no transformation."""
    _truncate(target, "accounts_raw")
    names = [c.name for c in legacy_crm.SOURCE_SCHEMA["customers"]]
    cols = sql.SQL(", ").join(map(sql.Identifier, names))
    out_sql = _render(source, sql.SQL("COPY (SELECT {} FROM customers) TO STDOUT").format(cols))
    in_sql = _render(target, sql.SQL("COPY accounts_raw ({}) FROM STDIN").format(cols))
    seconds, rows = psql_pipe(source, target, out_sql, in_sql)
    return RefResult("raw COPY pipe", seconds, rows)


def sql_pipe(source: Dsn, target: Dsn) -> RefResult:
    """COPY (transforming SELECT) out and into accounts_sql."""
    _truncate(target, "accounts_sql")
    out_sql = _render(source, sql.SQL("COPY ({}) TO STDOUT").format(transform_sql()))
    in_sql = _render(
        target,
        sql.SQL("COPY accounts_sql ({}) FROM STDIN").format(
            sql.SQL(", ").join(map(sql.Identifier, ACCOUNT_FIELDS))
        ),
    )
    seconds, rows = psql_pipe(source, target, out_sql, in_sql)
    return RefResult(
        "SQL-transform COPY pipe",
        seconds,
        rows,
        note="rows failing a rule are filtered out in the WHERE clause",
    )


_LOAD_FILE = """LOAD DATABASE
  FROM pgsql://{user}@127.0.0.1:{port}/{source}
  INTO pgsql://{user}@127.0.0.1:{port}/{target}
  WITH include drop, create tables, create indexes, reset sequences
  INCLUDING ONLY TABLE NAMES MATCHING 'customers' IN SCHEMA 'public'
;
"""


def pgloader(source: Dsn, target_db: str, workdir: Path) -> RefResult:
    """pgloader's plain copy of customers into ``target_db`` (dropped and recreated), timed
    under /usr/bin/time -v for its peak RSS. Raises RuntimeError when pgloader fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    conn = psycopg2.connect(source.db("postgres").url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(target_db)))
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target_db)))
    finally:
        conn.close()
    load = workdir / "customers.load"
    load.write_text(
        _LOAD_FILE.format(
            user=source.user, port=source.port, source=source.dbname, target=target_db
        )
    )
    start = time.perf_counter()
    proc = subprocess.run(  # noqa: S603 - fixed program, our load file
        # a 4 GB Lisp heap: at Debian's default the 1M-row copy sometimes died with "Heap
        # exhausted, game over" (dimitri/pgloader#327, #962); the load itself is unchanged
        [
            "/usr/bin/time",
            "-v",
            "pgloader",
            "--dynamic-space-size",
            "4096",
            "--root-dir",
            str(workdir / "pgloader"),
            str(load),
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    (workdir / "pgloader.out").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode:
        raise RuntimeError(f"pgloader failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    rows = re.search(r"\"customers\"\s+(\d+)\s+(\d+)", proc.stdout + proc.stderr)
    return RefResult(
        "pgloader (plain pg→pg copy)",
        seconds,
        int(rows.group(2)) if rows else -1,
        peak_rss_mb=int(rss.group(1)) / 1024 if rss else None,
        note="workers/concurrency at pgloader defaults, --dynamic-space-size 4096; "
        "includes table + index DDL",
    )
