"""Engine test fixtures: a fresh PostgreSQL database per test (from TEST_PG_URL) and temp SQLite."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest

from runs.engine.connectors import connect
from tests.support import mysql

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:54329/postgres"


def pg_admin_params() -> dict[str, Any]:
    """Connection params of the admin DSN (TEST_PG_URL); unreachable server fails the test."""
    return psycopg2.extensions.parse_dsn(os.environ.get("TEST_PG_URL", DEFAULT_PG_URL))


def _admin_exec(statement: str) -> None:
    conn = psycopg2.connect(**pg_admin_params())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def pg_params() -> Iterator[dict[str, Any]]:
    """A throwaway PostgreSQL database (dropped afterwards); yields connect() params."""
    name = f"engine_conn_{uuid.uuid4().hex[:12]}"
    _admin_exec(f'CREATE DATABASE "{name}"')
    params = {**pg_admin_params(), "dbname": name}
    try:
        yield params
    finally:
        _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_params(tmp_path: Any) -> dict[str, Any]:
    """A temp SQLite database file path."""
    return {"path": str(tmp_path / "engine.sqlite3"), "allowed_root": str(tmp_path)}


@dataclass
class Db:
    """A test database of one kind: raw SQL access plus the engine connector under test."""

    kind: str
    params: dict[str, Any]
    connector: Any = None
    _raw: Any = field(default=None, repr=False)

    def execute(self, statement: str, args: Any = None) -> list[tuple]:
        """Run raw SQL outside the connector (autocommit); returns fetched rows if any."""
        if self.kind == "postgresql":
            cur = self._raw.cursor()
            cur.execute(statement, args)
            return cur.fetchall() if cur.description else []
        cur = self._raw.execute(statement, args or ())
        return cur.fetchall()

    def script(self, statements: str) -> None:
        """Run several ``;``-separated statements."""
        for stmt in statements.split(";"):
            if stmt.strip():
                self.execute(stmt)


def _open_db(kind: str, params: dict[str, Any]) -> Db:
    if kind == "postgresql":
        raw = psycopg2.connect(**params)
        raw.autocommit = True
    else:
        raw = sqlite3.connect(params["path"], isolation_level=None)
    return Db(kind=kind, params=params, connector=connect(kind, params), _raw=raw)


@pytest.fixture(params=["postgresql", "sqlite"])
def tdb(request: pytest.FixtureRequest) -> Iterator[Db]:
    """Parametrised over both connectors: each test runs once on PostgreSQL, once on SQLite."""
    params = request.getfixturevalue(
        "pg_params" if request.param == "postgresql" else "sqlite_params"
    )
    handle = _open_db(request.param, params)
    try:
        yield handle
    finally:
        handle.connector.close()
        handle._raw.close()


@pytest.fixture
def tpg(pg_params: dict[str, Any]) -> Iterator[Db]:
    """PostgreSQL only."""
    handle = _open_db("postgresql", pg_params)
    try:
        yield handle
    finally:
        handle.connector.close()
        handle._raw.close()


@pytest.fixture
def mysql_params() -> Iterator[dict[str, Any]]:
    """A throwaway MySQL/MariaDB database (utf8mb4, dropped afterwards); yields connect()
    params. An unreachable server fails the test, it is never skipped."""
    with mysql.throwaway_database("engine_my") as name:
        yield {**mysql.admin_params(), "dbname": name}
