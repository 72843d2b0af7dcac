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

KINDS = ("postgresql", "sqlite", "mysql")


def connect(kind: str, params: dict[str, Any]) -> Connector:
    """Open a connector of ``kind``; connections open lazily; EngineError for an unknown kind.

    postgresql params: host, port, dbname, user, password, options.
    sqlite params: path, optional busy_timeout_ms.
    mysql params (MySQL 8.0+ / MariaDB 10.2+, a source only): host, port, dbname, user,
    password, connect_timeout.
    """
    if kind == "postgresql":
        from runs.engine.connectors.postgres import PostgresConnector

        allowed = ("host", "port", "dbname", "user", "password", "options")
        return PostgresConnector({k: params.get(k) for k in allowed})
    if kind == "sqlite":
        from runs.engine.connectors.sqlite import SqliteConnector

        return SqliteConnector(
            {"path": params["path"], "busy_timeout_ms": params.get("busy_timeout_ms")}
        )
    if kind == "mysql":
        from runs.engine.connectors.mysql import MysqlConnector

        allowed = ("host", "port", "dbname", "user", "password", "connect_timeout")
        return MysqlConnector({k: params.get(k) for k in allowed})
    raise EngineError(f"unknown connector kind {kind!r}")
