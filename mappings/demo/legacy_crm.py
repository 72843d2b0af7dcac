"""A deliberately dirty legacy-CRM source and an empty "new CRM" target (plain Python, no Django).

Used by the ``load_demo`` management command and the 1,000,000-row benchmark.

URLs are ``sqlite:////abs/path.db`` or ``postgresql://user@host:port/dbname`` (an existing
database; tables go into its current schema). Source and target must be different databases:
both have ``contacts`` and ``orders`` tables.

Dirt: every kind in ``DIRT_PROFILE`` (key ``table.column.kind`` or ``table.kind``) is injected
into exactly ``max(1, round(share * n))`` rows of each generation block of ``n`` rows, so each
kind appears at least once even at ``rows=200``. Duplicate customer rows are copies of other
rows and repeat whatever dirt their original carries. Blocks hold at most ``BLOCK_ROWS`` rows
and have their own generator seeded from ``(seed, table, block)``: same seed, same data, on
either backend. Amounts, dates and codes are text in the source because the legacy system
stored them as text (``Total_Amount`` holds ``1234.50`` as well as ``$1,234.50``).
"""

from __future__ import annotations

import io
import math
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import numpy as np
import psycopg2
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg2 import sql

SOURCE_TABLES = ("customers", "contacts", "orders")
TARGET_TABLES = ("accounts", "contacts", "orders")
CHILD_FACTOR = {"customers": 1, "contacts": 2, "orders": 3}
BLOCK_ROWS = 200_000
FIRST_ID = 1001
MIN_ROWS = 50

DIRT_PROFILE: dict[str, float] = {
    "customers.duplicate_row": 0.01,  # same data as another row, different Customer_ID
    "customers.Cust_Name.padded": 0.03,  # leading / trailing / double inner spaces
    "customers.Cust_Name.upper": 0.03,  # "ACME LOGISTICS CORP."
    "customers.Cust_Name.lower_dot": 0.02,  # "acme logistics corp."
    "customers.Cust_Name.over_80": 0.005,
    "customers.Cust_Name.null": 0.003,
    "customers.Address_Line2.null": 0.55,
    "customers.Address_Line2.empty": 0.15,
    "customers.City.null": 0.01,
    "customers.City.over_40": 0.002,
    "customers.State_Code.lowercase": 0.02,  # "ca"
    "customers.State_Code.invalid": 0.015,  # "XX", "C", "ZZ", ...
    "customers.State_Code.null": 0.005,
    "customers.Zip_Code.zip4": 0.15,  # rest: 5 digits
    "customers.Zip_Code.bad": 0.01,
    "customers.Zip_Code.null": 0.005,
    # phones: rest "555-123-4567"
    "customers.Phone_Number.paren": 0.25,  # "(555) 123-4567"
    "customers.Phone_Number.dotted": 0.10,  # "555.123.4567"
    "customers.Phone_Number.digits": 0.10,  # "5551234567"
    "customers.Phone_Number.plus1": 0.08,  # "+1 555 123 4567"
    "customers.Phone_Number.one_dash": 0.07,  # "1-555-123-4567"
    "customers.Phone_Number.extension": 0.03,  # "555-123-4567 x204"
    "customers.Phone_Number.invalid": 0.03,  # "12345", ...
    "customers.Phone_Number.null": 0.04,
    "customers.Email_Address.messy": 0.04,  # upper case, half of them space-padded
    "customers.Email_Address.invalid": 0.03,  # "john@", "no-at-sign.com", "a@b", ...
    "customers.Email_Address.duplicate": 0.02,  # another customer's e-mail
    "customers.Email_Address.over_80": 0.002,
    "customers.Email_Address.null": 0.02,
    # dates: rest "2018-01-15 10:30"
    "customers.Creation_Date.us": 0.15,  # "01/15/2018"
    "customers.Creation_Date.eu": 0.10,  # "15.01.2018"
    "customers.Creation_Date.iso_t": 0.10,  # "2018-01-15T10:30:00"
    "customers.Creation_Date.month_name": 0.08,  # "Jan 15 2018"
    "customers.Creation_Date.impossible": 0.02,  # "2021-02-30", "13/45/2019", ...
    "customers.Creation_Date.empty": 0.01,
    "customers.Creation_Date.null": 0.02,
    # status: rest "1"
    "customers.Status.inactive_0": 0.15,
    "customers.Status.active_A": 0.06,
    "customers.Status.inactive_I": 0.04,
    "customers.Status.unmapped_2": 0.04,
    "customers.Status.null": 0.001,
    "customers.Legacy_Notes.null": 0.40,  # rest: short notes (some with newline/tab/backslash)
    "customers.Legacy_Notes.over_32000": 0.0002,
    "contacts.orphan": 0.005,  # Customer_ID of no customer
    "contacts.parent_null": 0.001,
    "contacts.First_Name.padded": 0.03,
    "contacts.First_Name.upper": 0.03,
    "contacts.First_Name.over_40": 0.002,
    "contacts.First_Name.null": 0.01,
    "contacts.Last_Name.null": 0.005,  # target last_name is NOT NULL
    "contacts.Last_Name.over_80": 0.002,
    "contacts.Email.messy": 0.04,
    "contacts.Email.invalid": 0.03,
    "contacts.Email.duplicate": 0.02,
    "contacts.Email.over_80": 0.002,
    "contacts.Email.null": 0.05,
    "contacts.Phone.paren": 0.25,
    "contacts.Phone.dotted": 0.10,
    "contacts.Phone.digits": 0.10,
    "contacts.Phone.plus1": 0.08,
    "contacts.Phone.one_dash": 0.07,
    "contacts.Phone.extension": 0.03,
    "contacts.Phone.invalid": 0.03,
    "contacts.Phone.null": 0.10,
    "contacts.Title.null": 0.30,
    "contacts.Title.over_128": 0.001,
    "orders.orphan": 0.003,  # Contact_ID of no contact
    "orders.parent_null": 0.001,
    # dates: rest "2024-03-05"
    "orders.Order_Date.us": 0.10,
    "orders.Order_Date.eu": 0.05,
    "orders.Order_Date.iso_t": 0.05,
    "orders.Order_Date.month_name": 0.05,
    "orders.Order_Date.impossible": 0.01,
    "orders.Order_Date.empty": 0.005,
    "orders.Order_Date.null": 0.01,
    # amounts: rest "1234.50"
    "orders.Total_Amount.dollar_sign": 0.15,  # "$1,234.50"
    "orders.Total_Amount.thousands": 0.05,  # "1,234.50"
    "orders.Total_Amount.one_decimal": 0.05,  # "1234.5"
    "orders.Total_Amount.negative": 0.01,
    "orders.Total_Amount.invalid": 0.01,  # "N/A", "", "TBD", "12.34.56"
    "orders.Total_Amount.overflow": 0.001,  # does not fit NUMERIC(12,2)
    "orders.Total_Amount.null": 0.02,
    "orders.Currency.lowercase": 0.04,  # rest "USD"
    "orders.Currency.other": 0.03,  # EUR, GBP, CAD
    "orders.Currency.invalid": 0.01,  # "US$", "DOLLARS", "$"
    "orders.Currency.null": 0.02,
    "orders.Status.lowercase": 0.05,  # rest OPEN / SHIPPED / CLOSED / CANCELLED
    "orders.Status.unknown": 0.01,
    "orders.Status.null": 0.01,
}

US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin",
    "WY": "Wyoming",
}


# ---------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Col:
    """One column; ``type`` is PostgreSQL spelling, or ID (integer key) / AUTO_ID (serial key)."""

    name: str
    type: str
    null: bool = True
    unique: bool = False
    ref: str | None = None  # referenced table; the reference is to its "id"


def _cols(spec: str, **extra: dict[str, Any]) -> tuple[Col, ...]:
    pairs = (item.split(":") for item in spec.split())
    return tuple(Col(name, kind, **extra.get(name, {})) for name, kind in pairs)


_NN, _UNN = {"null": False}, {"null": False, "unique": True}
SOURCE_SCHEMA: dict[str, tuple[Col, ...]] = {
    "customers": _cols(
        "Customer_ID:ID Cust_Name:VARCHAR(255) Address_Line1:VARCHAR(255) "
        "Address_Line2:VARCHAR(255) City:VARCHAR(100) State_Code:VARCHAR(4) Zip_Code:VARCHAR(10) "
        "Phone_Number:VARCHAR(20) Email_Address:VARCHAR(255) Creation_Date:VARCHAR(40) "
        "Status:VARCHAR(4) Legacy_Notes:TEXT Last_Modified:TIMESTAMP", Last_Modified=_NN),
    "contacts": _cols(
        "Contact_ID:ID Customer_ID:INTEGER First_Name:VARCHAR(100) Last_Name:VARCHAR(100) "
        "Email:VARCHAR(255) Phone:VARCHAR(20) Title:VARCHAR(255) Last_Modified:TIMESTAMP",
        Last_Modified=_NN),
    "orders": _cols(
        "Order_ID:ID Contact_ID:INTEGER Order_Date:VARCHAR(40) Total_Amount:VARCHAR(20) "
        "Currency:VARCHAR(8) Status:VARCHAR(12) Last_Modified:TIMESTAMP", Last_Modified=_NN),
}
TARGET_SCHEMA: dict[str, tuple[Col, ...]] = {
    "accounts": _cols(
        "id:AUTO_ID account_number:VARCHAR(20) name:VARCHAR(80) billing_street:VARCHAR(255) "
        "billing_city:VARCHAR(40) billing_state:VARCHAR(20) billing_postal_code:VARCHAR(20) "
        "phone:VARCHAR(40) email:VARCHAR(80) legacy_created_date:TIMESTAMP "
        "account_status:VARCHAR(20) description:VARCHAR(32000) legacy_uuid:UUID",
        account_number=_UNN, name=_NN, account_status=_NN),
    "contacts": _cols(
        "id:AUTO_ID legacy_contact_id:VARCHAR(20) account_id:BIGINT first_name:VARCHAR(40) "
        "last_name:VARCHAR(80) email:VARCHAR(80) phone:VARCHAR(40) title:VARCHAR(128)",
        legacy_contact_id=_UNN, account_id={"null": False, "ref": "accounts"}, last_name=_NN),
    "orders": _cols(
        "id:AUTO_ID legacy_order_id:VARCHAR(20) contact_id:BIGINT order_date:DATE "
        "total_amount:NUMERIC(12,2) currency:CHAR(3) status:VARCHAR(20)",
        legacy_order_id=_UNN, contact_id={"null": False, "ref": "contacts"}),
}
_PG_TYPES = {"ID": "INTEGER PRIMARY KEY", "AUTO_ID": "BIGSERIAL PRIMARY KEY"}
_MYSQL_TYPES = {"ID": "INT PRIMARY KEY", "TIMESTAMP": "DATETIME"}
_SQLITE_TYPES = {"ID": "INTEGER PRIMARY KEY", "AUTO_ID": "INTEGER PRIMARY KEY AUTOINCREMENT",
                 "UUID": "TEXT", "BIGINT": "INTEGER"}


def _q(name: str) -> str:
    """SQLite identifier quoting (double quotes, embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _bq(name: str) -> str:
    """MySQL identifier quoting (backticks, embedded backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def _mysql_col(col: Col) -> str:
    # MySQL systems are sources only: the legacy tables have no REFERENCES to spell.
    parts = [_bq(col.name), _MYSQL_TYPES.get(col.type, col.type)]
    return " ".join(parts + ["NOT NULL"] * (not col.null) + ["UNIQUE"] * col.unique)


def _sqlite_col(col: Col) -> str:
    parts = [_q(col.name), _SQLITE_TYPES.get(col.type, col.type)]
    parts += ["NOT NULL"] * (not col.null) + ["UNIQUE"] * col.unique
    if col.ref:
        parts.append(f"REFERENCES {_q(col.ref)}(id)")
    size = re.fullmatch(r"(?:VAR)?CHAR\((\d+)\)", col.type)
    if size:  # SQLite ignores declared lengths; enforce them as PostgreSQL would
        parts.append(f"CHECK (length({_q(col.name)}) <= {int(size.group(1))})")
    return " ".join(parts)


def _pg_col(col: Col) -> sql.Composable:
    parts: list[sql.Composable] = [sql.Identifier(col.name), sql.SQL(_PG_TYPES.get(col.type,
                                                                                   col.type))]
    parts += [sql.SQL("NOT NULL")] * (not col.null) + [sql.SQL("UNIQUE")] * col.unique
    if col.ref:
        parts.append(sql.SQL("REFERENCES {}(id)").format(sql.Identifier(col.ref)))
    return sql.SQL(" ").join(parts)


def _ddl(kind: str, table: str, cols: tuple[Col, ...], *, if_missing: bool = False) -> list[Any]:
    """CREATE TABLE plus indexes (Last_Modified watermark, foreign-key columns) for one table."""
    indexed = [c.name for c in cols if c.ref or c.name == "Last_Modified"]
    guard = "IF NOT EXISTS " if if_missing else ""
    if kind == "sqlite":
        stmts = [f"CREATE TABLE {guard}{_q(table)} ({', '.join(map(_sqlite_col, cols))})"]
        return stmts + [f"CREATE INDEX {guard}{_q(f'{table}_{c.lower()}_idx')} ON "
                        f"{_q(table)} ({_q(c)})" for c in indexed]
    if kind == "mysql":
        stmts = [f"CREATE TABLE {guard}{_bq(table)} ({', '.join(map(_mysql_col, cols))}) "
                 "CHARACTER SET utf8mb4"]
        return stmts + [f"CREATE INDEX {_bq(f'{table}_{c.lower()}_idx')} ON {_bq(table)} "
                        f"({_bq(c)})" for c in indexed]
    create = sql.SQL("CREATE TABLE " + guard + "{} ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(_pg_col, cols)))
    index = sql.SQL("CREATE INDEX " + guard + "{} ON {} ({})")
    return [create] + [index.format(sql.Identifier(f"{table}_{c.lower()}_idx"),
                                    sql.Identifier(table), sql.Identifier(c)) for c in indexed]


# ---------------------------------------------------------------- connections


@contextmanager
def _connect(url: str) -> Iterator[tuple[str, Any]]:
    """Open ``url``; yields ("sqlite" | "postgresql" | "mysql", connection). Raises ValueError."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        conn: Any = sqlite3.connect(_sqlite_path(url), isolation_level=None)
        kind = "sqlite"
    elif scheme in ("postgresql", "postgres"):
        conn = psycopg2.connect(urlunsplit(parts._replace(scheme="postgresql")))
        kind = "postgresql"
    elif scheme == "mysql":
        import pymysql

        conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
            user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
            database=parts.path.lstrip("/"), charset="utf8mb4", autocommit=False)
        kind = "mysql"
    else:
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}")
    try:
        yield kind, conn
    finally:
        conn.close()


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


@contextmanager
def _transaction(kind: str, conn: Any) -> Iterator[None]:
    if kind == "postgresql":
        with conn:  # commits, or rolls back on an exception
            yield
        return
    if kind == "mysql":
        conn.begin()
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return
    conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _run(kind: str, conn: Any, stmts: list[Any]) -> None:
    if kind == "sqlite":
        for stmt in stmts:
            conn.execute(stmt)
        return
    with conn.cursor() as cur:
        for stmt in stmts:
            cur.execute(stmt)


def _existing(kind: str, conn: Any, tables: tuple[str, ...]) -> set[str]:
    if kind == "sqlite":
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    else:
        schema = "DATABASE()" if kind == "mysql" else "current_schema()"
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables "
                        f"WHERE table_schema = {schema}")
            rows = cur.fetchall()
        conn.rollback()
    return {r[0] for r in rows} & set(tables)


def _counts(kind: str, conn: Any, tables: tuple[str, ...]) -> dict[str, int]:
    if kind == "sqlite":
        return {t: conn.execute(f"SELECT count(*) FROM {_q(t)}").fetchone()[0] for t in tables}
    out = {}
    with conn.cursor() as cur:
        for t in tables:
            cur.execute(f"SELECT count(*) FROM {_bq(t)}" if kind == "mysql" else
                        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))
            out[t] = cur.fetchone()[0]
    conn.rollback()
    return out


def _drop(kind: str, conn: Any, tables: tuple[str, ...]) -> None:
    if kind in ("sqlite", "mysql"):
        quote = _q if kind == "sqlite" else _bq
        _run(kind, conn, [f"DROP TABLE IF EXISTS {quote(t)}" for t in reversed(tables)])
    else:
        drop = sql.SQL("DROP TABLE IF EXISTS {}")
        _run(kind, conn, [drop.format(sql.Identifier(t)) for t in reversed(tables)])


def _load(kind: str, conn: Any, table: str, cols: tuple[Col, ...],
          blocks: Iterator[dict[str, np.ndarray]]) -> None:
    """Bulk-insert blocks: COPY (CSV, unquoted empty = NULL), or executemany (SQLite; MySQL,
    where PyMySQL folds it into multi-row INSERTs)."""
    names = [c.name for c in cols]
    if kind == "mysql":
        stmt = (f"INSERT INTO {_bq(table)} ({', '.join(map(_bq, names))}) "
                f"VALUES ({', '.join(['%s'] * len(names))})")
        with conn.cursor() as cur:
            for block in blocks:
                cur.executemany(stmt, list(zip(*(block[n].tolist() for n in names), strict=True)))
        return
    if kind == "sqlite":
        stmt = (f"INSERT INTO {_q(table)} ({', '.join(map(_q, names))}) "
                f"VALUES ({', '.join('?' * len(names))})")
        for block in blocks:
            conn.executemany(stmt, zip(*(block[n].tolist() for n in names), strict=True))
        return
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)))
    with conn.cursor() as cur:
        for payload in _prefetch(_csv(block, cols) for block in blocks):
            cur.copy_expert(copy, payload)


def _csv(block: dict[str, np.ndarray], cols: tuple[Col, ...]) -> io.BytesIO:
    arrow = pa.table({c.name: _arrow(block[c.name], c.type) for c in cols})
    buf = io.BytesIO()
    pa_csv.write_csv(arrow, buf, pa_csv.WriteOptions(include_header=False))
    buf.seek(0)
    return buf


def _prefetch(items: Iterator[io.BytesIO]) -> Iterator[io.BytesIO]:
    """Produce the next item in a worker thread while the caller consumes the current one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _arrow(values: np.ndarray, col_type: str) -> pa.Array:
    """Integers stay integers; text is quoted in CSV so "" stays empty and NULL stays NULL."""
    if col_type in ("ID", "INTEGER"):
        return pa.array(values, type=pa.int64(), from_pandas=False)
    return pa.array(values, type=pa.string())


# ---------------------------------------------------------------- public API


def build_source(url: str, *, rows: int = 10_000, seed: int = 2026,
                 replace: bool = True) -> dict[str, int]:
    """Create and fill the dirty legacy tables (rows customers, 2x contacts, 3x orders).

    Transactional (all or nothing; on MySQL, whose DDL commits, each table's rows are) and
    deterministic per seed; ``url`` is sqlite:///, postgresql:// or mysql:// (a source).
    With replace=False an existing complete source is kept and its counts returned. Raises
    ValueError (rows < MIN_ROWS, bad URL) and RuntimeError (replace=False and only some source
    tables exist).
    """
    if rows < MIN_ROWS:
        raise ValueError(f"rows must be at least {MIN_ROWS}")
    with _connect(url) as (kind, conn):
        existing = _existing(kind, conn, SOURCE_TABLES)
        if existing and not replace:
            if len(existing) == len(SOURCE_TABLES):
                return _counts(kind, conn, SOURCE_TABLES)
            raise RuntimeError(f"partial legacy source: only {sorted(existing)} exist")
        with _transaction(kind, conn):
            _drop(kind, conn, SOURCE_TABLES)
            for table in SOURCE_TABLES:
                create, *indexes = _ddl(kind, table, SOURCE_SCHEMA[table])
                _run(kind, conn, [create])
                _load(kind, conn, table, SOURCE_SCHEMA[table], _blocks(table, rows, seed))
                _run(kind, conn, indexes)
        if kind == "postgresql":
            _analyze(conn, SOURCE_TABLES)
        return _counts(kind, conn, SOURCE_TABLES)


def build_target(url: str, *, replace: bool = True) -> None:
    """Create the empty new-CRM tables; transactional. replace=False only adds missing tables.

    SQLite enforces the REFERENCES clauses only on connections that ran
    ``PRAGMA foreign_keys = ON`` (a per-connection setting): the target's user must do that.
    Declared lengths are enforced in SQLite with CHECK constraints, as PostgreSQL would.
    """
    with _connect(url) as (kind, conn), _transaction(kind, conn):
        if kind == "mysql":
            raise ValueError("MySQL systems are sources only: build the target elsewhere")
        if replace:
            _drop(kind, conn, TARGET_TABLES)
        for table in TARGET_TABLES:
            _run(kind, conn, _ddl(kind, table, TARGET_SCHEMA[table], if_missing=not replace))


def source_exists(url: str) -> dict[str, int] | None:
    """Row counts of the legacy tables if all of them exist, else None; read-only."""
    return _tables_exist(url, SOURCE_TABLES)


def target_exists(url: str) -> dict[str, int] | None:
    """Row counts of the new-CRM tables if all of them exist, else None; read-only."""
    return _tables_exist(url, TARGET_TABLES)


def _tables_exist(url: str, tables: tuple[str, ...]) -> dict[str, int] | None:
    if url.startswith("sqlite") and not os.path.exists(_sqlite_path(url)):
        return None  # do not let sqlite3.connect create a stray empty file
    with _connect(url) as (kind, conn):
        if len(_existing(kind, conn, tables)) < len(tables):
            return None
        return _counts(kind, conn, tables)


def _analyze(conn: Any, tables: tuple[str, ...]) -> None:
    _run("postgresql", conn, [sql.SQL("ANALYZE {}").format(sql.Identifier(t)) for t in tables])
    conn.commit()


# ---------------------------------------------------------------- generation helpers

_T2 = np.array([f"{i:02d}" for i in range(100)], dtype=object)
_T3 = np.array([f"{i:03d}" for i in range(1000)], dtype=object)
_T4 = np.array([f"{i:04d}" for i in range(10000)], dtype=object)
Maker = Callable[[np.ndarray], Any]


def _words(text: str) -> np.ndarray:
    return np.array(text.split("|"), dtype=object)


_MONTHS = _words("Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")


_COMPANY = _words("Acme|Globex|Initech|Umbrella|Stark|Wayne|Wonka|Hooli|Vandelay|Soylent|Tyrell|"
                  "Cyberdyne|Oceanic|Sterling|Pied Piper|Dunder|Prestige|Monarch|Blue Sun|"
                  "Aperture|Black Mesa|O'Malley|Northwind|Contoso|Fabrikam|Litware|Proseware|"
                  "Big \"W\"|Gekko|Massive Dynamic|Virtucon|Duff|Krusty|Nakatomi|Wernham|"
                  "Bluth|Los Pollos|Sirius|Zorg|Rekall")
_KIND = _words("Industries|Logistics|Foods|Systems|Consulting|Labs|Trading|Holdings|Supply|"
               "Motors|Media|Health")
_SUFFIX = _words(" Corp.| Inc.| LLC| Ltd.| Co.| Group|")
_SLUG = np.array([re.sub(r"[^a-z]", "", w.lower()) for w in _COMPANY], dtype=object)
_KSLUG = np.array([w.lower() for w in _KIND], dtype=object)
_LONG_TAIL = ("International Holdings and Consolidated Trading Company of North America and "
              "Affiliated Subsidiaries Worldwide (formerly Known as the Old Legacy Name)")
_STREET = _words("Main|Oak|Pine|Maple|Cedar|Elm|Washington|Lake|Hill|Park|Sunset|Broadway|"
                 "Market|Church|Highland|River|Spring|Willow|Lincoln|Jefferson")
_STREET_KIND = _words(" St| Ave| Rd| Blvd| Ln| Dr| Way| Ct| St.| Avenue")
_UNIT = _words("Suite |Apt |Floor |Unit |Bldg |PO Box ")
_CITY_STATE = [c.split(",") for c in _words(
    "Anytown,CA|Los Angeles,CA|San Diego,CA|New York,NY|Buffalo,NY|Chicago,IL|Houston,TX|"
    "Austin,TX|Dallas,TX|Phoenix,AZ|Philadelphia,PA|Pittsburgh,PA|Jacksonville,FL|Miami,FL|"
    "Columbus,OH|Cleveland,OH|Charlotte,NC|Indianapolis,IN|Seattle,WA|Spokane,WA|Denver,CO|"
    "Washington,DC|Boston,MA|Nashville,TN|Detroit,MI|Portland,OR|Las Vegas,NV|Memphis,TN|"
    "Louisville,KY|Baltimore,MD|Milwaukee,WI|Albuquerque,NM|Atlanta,GA|Omaha,NE|Boise,ID|"
    "Anchorage,AK|Honolulu,HI|Burlington,VT|Cheyenne,WY|Sioux Falls,SD")]
_CITY = np.array([c for c, _ in _CITY_STATE], dtype=object)
_CITY_CODE = np.array([s for _, s in _CITY_STATE], dtype=object)
_LONG_CITY = ["Rancho Santa Margarita Heights North Village District",
              "Llanfairpwllgwyngyll Township of Upper Saint Clair West"]
_FIRST = _words("James|Mary|John|Patricia|Robert|Jennifer|Michael|Linda|William|Elizabeth|David|"
                "Barbara|Richard|Susan|Joseph|Jessica|Thomas|Sarah|Carlos|Karen|Wei|Aisha|Omar|"
                "Priya|Sven|Chloé|Zoë|Mateo|Yuki|Fatima")
_LAST = _words("Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Rodriguez|Martinez|"
               "Hernandez|Lopez|Gonzalez|Wilson|Anderson|O'Brien|Nguyen|Kim|Patel|Müller|"
               "Van der Berg|Lee|Walker|Young|Allen|King|Wright|Scott|Green|Baker")
_FSLUG = np.array([re.sub(r"[^a-z]", "", w.lower()) for w in _FIRST], dtype=object)
_LSLUG = np.array([re.sub(r"[^a-z]", "", w.lower()) for w in _LAST], dtype=object)
_MAIL_DOMAIN = _words("gmail.com|yahoo.com|outlook.com|example.com|aol.com|hotmail.com")
_MAILBOX = _words("info|sales|contact|office|billing|accounts")
_LONG_LOCAL = "accounts.payable.department.northern.region.headquarters.attention."
_TITLE = _words("CEO|CFO|Owner|Purchasing Manager|Office Manager|Accountant|Sales Rep|"
                "VP Operations|IT Director|Buyer|Assistant|Controller")
_LONG_TITLE = ("Senior Executive Vice President of Strategic Procurement, Vendor Relations, "
               "Logistics Coordination and Regional Operational Excellence (Acting, Interim)")
_NOTES = _words("Important client|Prefers e-mail contact.|Net 30 terms|Credit hold lifted 2020|"
                "Called 2019-03-01;\nwill renew in Q3.|See paper file #4471|"
                "Migrated from C:\\legacy\\export\\crm.dbf|VIP\tdo not call before 10am|"
                "Duplicate? check with sales|\"Key account\" per J. Smith")
_LONG_NOTES = [("Call log: customer asked for a callback about invoice 4471. " * 560)[:33_000],
               ("Legacy import note, repeated by a faulty batch job. " * 700)[:36_400]]
_ORDER_STATUS = _words("OPEN|SHIPPED|CLOSED|CANCELLED")


def _groups(rng: np.random.Generator, n: int, prefix: str) -> tuple[dict[str, np.ndarray],
                                                                      np.ndarray]:
    """Disjoint random row sets of exactly max(1, round(share*n)) rows per kind, and the rest."""
    shares = {k.rsplit(".", 1)[1]: v for k, v in DIRT_PROFILE.items()
              if k.rsplit(".", 1)[0] == prefix}
    counts = [max(1, round(share * n)) for share in shares.values()]
    if sum(counts) > n:
        raise ValueError(f"{n} rows are too few for the dirt of {prefix}")
    perm = rng.permutation(n)
    bounds = np.cumsum([0, *counts])
    groups = {k: perm[a:b] for k, a, b in zip(shares, bounds[:-1], bounds[1:], strict=True)}
    return groups, perm[bounds[-1]:]


def _dirty(rng: np.random.Generator, base: np.ndarray, prefix: str,
           makers: dict[str, Maker]) -> np.ndarray:
    """Copy of base with each DIRT_PROFILE kind under prefix written by its maker."""
    groups, _ = _groups(rng, len(base), prefix)
    out = base.copy()
    for kind, idx in groups.items():
        out[idx] = makers[kind](idx)
    return out


def _cycle(*values: Any) -> Maker:
    choices = np.array(values, dtype=object)
    return lambda idx: choices[np.arange(len(idx)) % len(choices)]


def _const(value: Any) -> Maker:
    return lambda idx: value


def _num(values: np.ndarray) -> np.ndarray:
    return values.astype(str).astype(object)


def _ustr(fn: Callable[..., np.ndarray], values: np.ndarray, *args: Any) -> np.ndarray:
    """Apply a numpy.strings function to an object array of str."""
    return fn(values.astype(str), *args).astype(object)


def _pick(rng: np.random.Generator, table: np.ndarray, n: int) -> np.ndarray:
    return table[rng.integers(0, len(table), n)]


def _padded(values: np.ndarray) -> np.ndarray:
    """Leading, trailing or doubled inner spaces, in turn."""
    out = values.copy()
    out[0::3] = "  " + out[0::3]
    out[1::3] = out[1::3] + "  "
    out[2::3] = _ustr(np.strings.replace, out[2::3], " ", "  ", 1) + " "
    return out


def _over(values: np.ndarray, length: int) -> np.ndarray:
    return values + " " + _LONG_TAIL[:length]


def _timestamps(rng: np.random.Generator, n: int) -> np.ndarray:
    secs = rng.integers(0, 2 * 365 * 86400, n).astype("timedelta64[s]")
    text = np.datetime_as_string(np.datetime64("2024-01-01T00:00:00") + secs, unit="s")
    return np.strings.replace(text, "T", " ").astype(object)


def _phones(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
    a, e = _T3[rng.integers(201, 990, n)], _T3[rng.integers(200, 1000, n)]
    line = _T4[rng.integers(0, 10000, n)]
    base = a + "-" + e + "-" + line
    return _dirty(rng, base, prefix, {
        "paren": lambda i: "(" + a[i] + ") " + e[i] + "-" + line[i],
        "dotted": lambda i: a[i] + "." + e[i] + "." + line[i],
        "digits": lambda i: a[i] + e[i] + line[i],
        "plus1": lambda i: "+1 " + a[i] + " " + e[i] + " " + line[i],
        "one_dash": lambda i: "1-" + base[i],
        "extension": lambda i: base[i] + " x" + _T3[rng.integers(100, 1000, len(i))],
        "invalid": _cycle("12345", "555-1234", "N/A", "0000000000", "call office"),
        "null": _const(None),
    })


def _emails(rng: np.random.Generator, base: np.ndarray, prefix: str) -> np.ndarray:
    groups, rest = _groups(rng, len(base), prefix)
    out = base.copy()
    messy = _ustr(np.strings.upper, base[groups["messy"]])
    messy[1::2] = " " + messy[1::2] + " "
    out[groups["messy"]] = messy
    out[groups["invalid"]] = _cycle("john@", "no-at-sign.com", "a@b", "info@@acme.com",
                                    "sales at acme.com", "@example.com")(groups["invalid"])
    out[groups["duplicate"]] = base[rng.choice(rest, len(groups["duplicate"]))]
    out[groups["over_80"]] = _LONG_LOCAL + base[groups["over_80"]]
    out[groups["null"]] = None
    return out


def _dates(rng: np.random.Generator, n: int, prefix: str, span: tuple[str, str],
           with_time: bool) -> np.ndarray:
    lo, hi = (np.datetime64(d, "D").astype(np.int64) for d in span)
    days = rng.integers(lo, hi, n).astype("datetime64[D]")
    secs = rng.integers(0, 86400, n)
    month_no = days.astype("datetime64[M]").astype(np.int64) % 12
    y = _T4[days.astype("datetime64[Y]").astype(np.int64) + 1970]
    m, d = _T2[month_no + 1], _T2[(days - days.astype("datetime64[M]")).astype(np.int64) + 1]
    hh, mm, ss = _T2[secs // 3600], _T2[secs // 60 % 60], _T2[secs % 60]
    iso = y + "-" + m + "-" + d
    base = iso + " " + hh + ":" + mm if with_time else iso
    return _dirty(rng, base, prefix, {
        "us": lambda i: m[i] + "/" + d[i] + "/" + y[i],
        "eu": lambda i: d[i] + "." + m[i] + "." + y[i],
        "iso_t": lambda i: iso[i] + "T" + hh[i] + ":" + mm[i] + ":" + ss[i],
        "month_name": lambda i: _MONTHS[month_no[i]] + " " + d[i] + " " + y[i],
        "impossible": _cycle("2021-02-30", "13/45/2019", "2019-04-31 08:00", "31.02.2020",
                             "2020-13-01"),
        "empty": _const(""),
        "null": _const(None),
    })


def _parents(rng: np.random.Generator, n: int, prefix: str, parent_rows: int) -> np.ndarray:
    """Parent ids (object ints); orphans point past the last parent id."""
    last = FIRST_ID + parent_rows - 1
    base = rng.integers(FIRST_ID, last + 1, n).astype(object)
    return _dirty(rng, base, prefix, {
        "orphan": lambda i: (last + rng.integers(1, 100_000, len(i))).astype(object),
        "parent_null": _const(None),
    })


# ---------------------------------------------------------------- tables


def _blocks(table: str, rows: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """Deterministic blocks of generated rows for one source table."""
    total = rows * CHILD_FACTOR[table]
    make = {"customers": _customers, "contacts": partial(_contacts, parents=rows),
            "orders": partial(_orders, parents=2 * rows)}[table]
    sizes = [len(b) for b in np.array_split(np.arange(total), math.ceil(total / BLOCK_ROWS))]
    start = 0
    for number, size in enumerate(sizes):
        rng = np.random.default_rng([seed, SOURCE_TABLES.index(table), number])
        yield make(rng, size, FIRST_ID + start)
        start += size


def _customers(rng: np.random.Generator, n: int, first_id: int) -> dict[str, np.ndarray]:
    dups = max(1, round(DIRT_PROFILE["customers.duplicate_row"] * n))
    originals = _customer_originals(rng, n - dups, first_id)
    order = rng.permutation(np.concatenate([np.arange(n - dups), rng.integers(0, n - dups,
                                                                              dups)]))
    cols = {name: values[order] for name, values in originals.items()}
    cols["Customer_ID"] = np.arange(first_id, first_id + n, dtype=np.int64)
    cols["Last_Modified"] = _timestamps(rng, n)
    return cols


def _customer_originals(rng: np.random.Generator, m: int, first_id: int) -> dict[str, Any]:
    word, kind = rng.integers(0, len(_COMPANY), m), rng.integers(0, len(_KIND), m)
    name = _COMPANY[word] + " " + _KIND[kind] + _pick(rng, _SUFFIX, m)
    city = rng.integers(0, len(_CITY), m)
    zip5 = rng.integers(501, 99951, m)
    zip5 = _T3[zip5 // 100] + _T2[zip5 % 100]
    mail = (_pick(rng, _MAILBOX, m) + "@" + _SLUG[word] + _KSLUG[kind]
            + _num(np.arange(first_id, first_id + m)) + ".com")
    return {
        "Cust_Name": _dirty(rng, name, "customers.Cust_Name", {
            "padded": lambda i: _padded(name[i]),
            "upper": lambda i: _ustr(np.strings.upper, name[i]),
            "lower_dot": lambda i: _ustr(np.strings.rstrip, _ustr(np.strings.lower, name[i]),
                                         ".") + ".",
            "over_80": lambda i: _over(name[i], 80), "null": _const(None)}),
        "Address_Line1": (_num(rng.integers(1, 9999, m)) + " " + _pick(rng, _STREET, m)
                          + _pick(rng, _STREET_KIND, m)),
        "Address_Line2": _dirty(rng, _pick(rng, _UNIT, m) + _num(rng.integers(1, 999, m)),
                                "customers.Address_Line2",
                                {"null": _const(None), "empty": _const("")}),
        "City": _dirty(rng, _CITY[city], "customers.City",
                       {"null": _const(None), "over_40": _cycle(*_LONG_CITY)}),
        "State_Code": _dirty(rng, _CITY_CODE[city], "customers.State_Code", {
            "lowercase": lambda i: _ustr(np.strings.lower, _CITY_CODE[city[i]]),
            "invalid": _cycle("XX", "C", "ZZ", "CAL", "N/A"), "null": _const(None)}),
        "Zip_Code": _dirty(rng, zip5, "customers.Zip_Code", {
            "zip4": lambda i: zip5[i] + "-" + _T4[rng.integers(0, 10000, len(i))],
            "bad": _cycle("1234", "ABCDE", "90210-", "00000", "9021O"), "null": _const(None)}),
        "Phone_Number": _phones(rng, m, "customers.Phone_Number"),
        "Email_Address": _emails(rng, mail, "customers.Email_Address"),
        "Creation_Date": _dates(rng, m, "customers.Creation_Date", ("2005-01-01", "2024-01-01"),
                                with_time=True),
        "Status": _dirty(rng, np.full(m, "1", dtype=object), "customers.Status", {
            "inactive_0": _const("0"), "active_A": _const("A"), "inactive_I": _const("I"),
            "unmapped_2": _const("2"), "null": _const(None)}),
        "Legacy_Notes": _dirty(rng, _pick(rng, _NOTES, m), "customers.Legacy_Notes",
                               {"null": _const(None), "over_32000": _cycle(*_LONG_NOTES)}),
    }


def _contacts(rng: np.random.Generator, n: int, first_id: int, *,
              parents: int) -> dict[str, np.ndarray]:
    fi, li = rng.integers(0, len(_FIRST), n), rng.integers(0, len(_LAST), n)
    first, last = _FIRST[fi], _LAST[li]
    mail = (_FSLUG[fi] + "." + _LSLUG[li] + _num(np.arange(first_id, first_id + n)) + "@"
            + _pick(rng, _MAIL_DOMAIN, n))
    return {
        "Contact_ID": np.arange(first_id, first_id + n, dtype=np.int64),
        "Customer_ID": _parents(rng, n, "contacts", parents),
        "First_Name": _dirty(rng, first, "contacts.First_Name", {
            "padded": lambda i: _padded(first[i]),
            "upper": lambda i: _ustr(np.strings.upper, first[i]),
            "over_40": lambda i: _over(first[i], 40), "null": _const(None)}),
        "Last_Name": _dirty(rng, last, "contacts.Last_Name", {
            "null": _const(None), "over_80": lambda i: _over(last[i], 80)}),
        "Email": _emails(rng, mail, "contacts.Email"),
        "Phone": _phones(rng, n, "contacts.Phone"),
        "Title": _dirty(rng, _pick(rng, _TITLE, n), "contacts.Title", {
            "null": _const(None), "over_128": _const(_LONG_TITLE)}),
        "Last_Modified": _timestamps(rng, n),
    }


def _orders(rng: np.random.Generator, n: int, first_id: int, *,
            parents: int) -> dict[str, np.ndarray]:
    cents = np.clip(rng.lognormal(10.5, 1.2, n), 100, 25_000_000).astype(np.int64)
    dollars, cent = cents // 100, _T2[cents % 100]
    plain = _num(dollars)
    grouped = np.where(dollars >= 1000, _num(dollars // 1000) + "," + _T3[dollars % 1000], plain)
    status = _pick(rng, _ORDER_STATUS, n)
    return {
        "Order_ID": np.arange(first_id, first_id + n, dtype=np.int64),
        "Contact_ID": _parents(rng, n, "orders", parents),
        "Order_Date": _dates(rng, n, "orders.Order_Date", ("2022-01-01", "2026-01-01"),
                             with_time=False),
        "Total_Amount": _dirty(rng, plain + "." + cent, "orders.Total_Amount", {
            "dollar_sign": lambda i: "$" + grouped[i] + "." + cent[i],
            "thousands": lambda i: grouped[i] + "." + cent[i],
            "one_decimal": lambda i: plain[i] + "." + _ustr(np.strings.slice, cent[i], 1),
            "negative": lambda i: "-" + plain[i] + "." + cent[i],
            "invalid": _cycle("N/A", "", "TBD", "12.34.56"),
            "overflow": _cycle("99999999999.99", "123456789012.00"), "null": _const(None)}),
        "Currency": _dirty(rng, np.full(n, "USD", dtype=object), "orders.Currency", {
            "lowercase": _const("usd"), "other": _cycle("EUR", "GBP", "CAD"),
            "invalid": _cycle("US$", "DOLLARS", "$"), "null": _const(None)}),
        "Status": _dirty(rng, status, "orders.Status", {
            "lowercase": lambda i: _ustr(np.strings.lower, status[i]),
            "unknown": _cycle("X", "??", "PENDNG"), "null": _const(None)}),
        "Last_Modified": _timestamps(rng, n),
    }
