"""Database connectors: ``connect(kind, params)`` opens a PostgreSQL, SQLite or MySQL one."""

from __future__ import annotations

from typing import Any

from runs.engine.connectors.base import (
    ChangedSince,
    ColumnInfo,
    Connector,
    KeyRange,
    LoadResult,
    RollbackResult,
    SchemaInfo,
    Source,
    TableChecksum,
    TableInfo,
    Target,
)
from runs.engine.errors import EngineError
from runs.engine.guard import DestinationRefused, file_path_check, server_pin

__all__ = [
    "ChangedSince",
    "ColumnInfo",
    "Connector",
    "KeyRange",
    "LoadResult",
    "RollbackResult",
    "SchemaInfo",
    "Source",
    "TableChecksum",
    "TableInfo",
    "Target",
    "connect",
]

KINDS = ("postgresql", "sqlite", "mysql", "file")
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def _pinned(kind: str, params: dict[str, Any]) -> str | None:
    """A guarded connection (``refused_servers`` given, even empty): resolve the host once,
    refuse our own database (DestinationRefused), and return the address to connect to."""
    if "refused_servers" not in params:
        return None
    return server_pin(
        params.get("host") or "",
        params.get("port"),
        params.get("dbname") or "",
        default_port=DEFAULT_PORTS[kind],
        refused=params.get("refused_servers") or (),
    )


PG_LIBPQ_KEYS = (
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "options",
    "require_auth",
    "sslmode",
    "connect_timeout",
)


def postgres_libpq_params(params: dict[str, Any]) -> dict[str, Any]:
    """The libpq keyword arguments of PostgreSQL connector params, after the destination guard
    (DestinationRefused for our own database; the host pinned to the address checked, as
    ``hostaddr``); for direct psycopg2 connections (CDC)."""
    pinned = _pinned("postgresql", params)
    libpq = {k: params[k] for k in PG_LIBPQ_KEYS if params.get(k) not in (None, "")}
    return libpq | ({"hostaddr": pinned} if pinned else {})


def connect(kind: str, params: dict[str, Any]) -> Connector:
    """Open a connector of ``kind``; connections open lazily; EngineError for an unknown kind.

    postgresql params: host, port, dbname, user, password, options, require_auth,
    refused_servers (ServerIdentity list: DestinationRefused when the server is one of them;
    given, even empty, the host is resolved once and the connection pinned to that address),
    connect_timeout.
    sqlite / file params (a file system is read from its staging SQLite database): path,
    allowed_root (required: DestinationRefused when the resolved path lies outside it),
    refused_paths (files always refused), optional busy_timeout_ms.
    mysql params (MySQL 8.0+ / MariaDB 10.2+, a source only): host, port, dbname, user,
    password, connect_timeout, refused_servers.
    """
    if kind == "postgresql":
        from runs.engine.connectors.postgres import PostgresConnector

        pinned = _pinned(kind, params)
        libpq = {k: params.get(k) for k in PG_LIBPQ_KEYS}
        return PostgresConnector(libpq | ({"hostaddr": pinned} if pinned else {}))
    if kind in ("sqlite", "file"):
        from runs.engine.connectors.sqlite import SqliteConnector

        if not params.get("allowed_root"):
            raise DestinationRefused("An SQLite connector needs the allowed data directory.")
        path = file_path_check(
            str(params.get("path") or ""),
            allowed_root=str(params["allowed_root"]),
            refused=params.get("refused_paths") or (),
        )
        return SqliteConnector({"path": path, "busy_timeout_ms": params.get("busy_timeout_ms")})
    if kind == "mysql":
        from runs.engine.connectors.mysql import MysqlConnector

        pinned = _pinned(kind, params)
        allowed = ("host", "port", "dbname", "user", "password", "connect_timeout")
        return MysqlConnector(
            {k: params.get(k) for k in allowed} | ({"host": pinned} if pinned else {})
        )
    raise EngineError(f"unknown connector kind {kind!r}")
