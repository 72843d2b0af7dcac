"""Throwaway MySQL/MariaDB databases on the test server (TEST_MYSQL_URL, from scripts/test.sh)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql

DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:53306/"


def admin_params() -> dict[str, Any]:
    """host, port, user, password of TEST_MYSQL_URL; an unreachable server fails the caller."""
    url = urlsplit(os.environ.get("TEST_MYSQL_URL", DEFAULT_MYSQL_URL))
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 3306,
        "user": unquote(url.username or "root"),
        "password": unquote(url.password or ""),
    }


def raw(dbname: str | None = None) -> Any:
    """A plain autocommit PyMySQL connection (outside any code under test)."""
    p = admin_params()
    return pymysql.connect(
        host=p["host"],
        port=p["port"],
        user=p["user"],
        password=p["password"],
        database=dbname,
        charset="utf8mb4",
        autocommit=True,
    )


def url_for(dbname: str) -> str:
    p = admin_params()
    auth = p["user"] + (f":{p['password']}" if p["password"] else "")
    return f"mysql://{auth}@{p['host']}:{p['port']}/{dbname}"


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """Create a utf8mb4 database, yield its name, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = raw()
    try:
        with admin.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
