"""Building and inspecting the demo source and target databases (the public API)."""

from __future__ import annotations

import os
from typing import Any

from psycopg2 import sql

from .db import _connect, _counts, _drop, _existing, _load, _run, _sqlite_path, _transaction
from .generate import _blocks
from .profile import MIN_ROWS, SOURCE_TABLES, TARGET_TABLES
from .schema import SOURCE_SCHEMA, TARGET_SCHEMA, _ddl

# ---------------------------------------------------------------- public API


def build_source(
    url: str,
    *,
    rows: int = 10_000,
    seed: int = 2026,
    replace: bool = True,
    tables: tuple[str, ...] = SOURCE_TABLES,
) -> dict[str, int]:
    """Create and fill the dirty legacy tables (rows customers, 2x contacts, 3x orders);
    ``tables`` limits it to some of them (the benchmark builds only ``customers``).

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
            for table in (t for t in SOURCE_TABLES if t in tables):
                create, *indexes = _ddl(kind, table, SOURCE_SCHEMA[table])
                _run(kind, conn, [create])
                _load(kind, conn, table, SOURCE_SCHEMA[table], _blocks(table, rows, seed))
                _run(kind, conn, indexes)
        built = tuple(t for t in SOURCE_TABLES if t in tables)
        if kind == "postgresql":
            _analyze(conn, built)
        return _counts(kind, conn, built)


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
