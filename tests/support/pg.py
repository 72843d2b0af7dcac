"""Throwaway PostgreSQL databases on the test server (TEST_PG_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:54329/postgres"


def admin_params() -> dict[str, Any]:
    """Connection parameters of the admin DSN; an unreachable server fails the caller."""
    return psycopg2.extensions.parse_dsn(os.environ.get("TEST_PG_URL", DEFAULT_PG_URL))


def admin_exec(statement: sql.Composable | str) -> None:
    conn = psycopg2.connect(**admin_params())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def url_for(dbname: str) -> str:
    p = admin_params()
    auth = p.get("user", "postgres") + (f":{p['password']}" if p.get("password") else "")
    return f"postgresql://{auth}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{dbname}"


@contextmanager
def throwaway_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """Create a database (a copy of ``template``, which nobody may be connected to, if
    given), yield its name, drop it (even while connections remain)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    admin_exec(create)
    try:
        yield name
    finally:
        admin_exec(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def query(dbname: str, statement: str, params: tuple | None = None) -> list[tuple]:
    """Run one statement on a test database and return its rows."""
    conn = psycopg2.connect(**{**admin_params(), "dbname": dbname})
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()
