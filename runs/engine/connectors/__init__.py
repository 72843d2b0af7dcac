"""Database connectors: ``connect(kind, params)`` opens a PostgreSQL or SQLite connector."""

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

KINDS = ("postgresql", "sqlite")


def connect(kind: str, params: dict[str, Any]) -> Connector:
    """Open a connector of ``kind``; connections open lazily; EngineError for an unknown kind.

    postgresql params: host, port, dbname, user, password, options.
    sqlite params: path, optional busy_timeout_ms.
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
    raise EngineError(f"unknown connector kind {kind!r}")
