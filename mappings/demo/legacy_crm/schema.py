"""The legacy source's and the new target's tables, and their DDL per backend (PostgreSQL,
MySQL/MariaDB, SQLite)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql

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
        "Status:VARCHAR(4) Legacy_Notes:TEXT Last_Modified:TIMESTAMP",
        Last_Modified=_NN,
    ),
    "contacts": _cols(
        "Contact_ID:ID Customer_ID:INTEGER First_Name:VARCHAR(100) Last_Name:VARCHAR(100) "
        "Email:VARCHAR(255) Phone:VARCHAR(20) Title:VARCHAR(255) Last_Modified:TIMESTAMP",
        Last_Modified=_NN,
    ),
    "orders": _cols(
        "Order_ID:ID Contact_ID:INTEGER Order_Date:VARCHAR(40) Total_Amount:VARCHAR(20) "
        "Currency:VARCHAR(8) Status:VARCHAR(12) Last_Modified:TIMESTAMP",
        Last_Modified=_NN,
    ),
}
TARGET_SCHEMA: dict[str, tuple[Col, ...]] = {
    "accounts": _cols(
        "id:AUTO_ID account_number:VARCHAR(20) name:VARCHAR(80) billing_street:VARCHAR(255) "
        "billing_city:VARCHAR(40) billing_state:VARCHAR(20) billing_postal_code:VARCHAR(20) "
        "phone:VARCHAR(40) email:VARCHAR(80) legacy_created_date:TIMESTAMP "
        "account_status:VARCHAR(20) description:VARCHAR(32000) legacy_uuid:UUID",
        account_number=_UNN,
        name=_NN,
        account_status=_NN,
    ),
    "contacts": _cols(
        "id:AUTO_ID legacy_contact_id:VARCHAR(20) account_id:BIGINT first_name:VARCHAR(40) "
        "last_name:VARCHAR(80) email:VARCHAR(80) phone:VARCHAR(40) title:VARCHAR(128)",
        legacy_contact_id=_UNN,
        account_id={"null": False, "ref": "accounts"},
        last_name=_NN,
    ),
    "orders": _cols(
        "id:AUTO_ID legacy_order_id:VARCHAR(20) contact_id:BIGINT order_date:DATE "
        "total_amount:NUMERIC(12,2) currency:CHAR(3) status:VARCHAR(20)",
        legacy_order_id=_UNN,
        contact_id={"null": False, "ref": "contacts"},
    ),
}
_PG_TYPES = {"ID": "INTEGER PRIMARY KEY", "AUTO_ID": "BIGSERIAL PRIMARY KEY"}
_MYSQL_TYPES = {"ID": "INT PRIMARY KEY", "TIMESTAMP": "DATETIME"}
_SQLITE_TYPES = {
    "ID": "INTEGER PRIMARY KEY",
    "AUTO_ID": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "UUID": "TEXT",
    "BIGINT": "INTEGER",
}


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
    parts: list[sql.Composable] = [
        sql.Identifier(col.name),
        sql.SQL(_PG_TYPES.get(col.type, col.type)),
    ]
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
        return stmts + [
            f"CREATE INDEX {guard}{_q(f'{table}_{c.lower()}_idx')} ON {_q(table)} ({_q(c)})"
            for c in indexed
        ]
    if kind == "mysql":
        stmts = [
            f"CREATE TABLE {guard}{_bq(table)} ({', '.join(map(_mysql_col, cols))}) "
            "CHARACTER SET utf8mb4"
        ]
        return stmts + [
            f"CREATE INDEX {_bq(f'{table}_{c.lower()}_idx')} ON {_bq(table)} ({_bq(c)})"
            for c in indexed
        ]
    create = sql.SQL("CREATE TABLE " + guard + "{} ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(_pg_col, cols))
    )
    index = sql.SQL("CREATE INDEX " + guard + "{} ON {} ({})")
    return [create] + [
        index.format(
            sql.Identifier(f"{table}_{c.lower()}_idx"), sql.Identifier(table), sql.Identifier(c)
        )
        for c in indexed
    ]
