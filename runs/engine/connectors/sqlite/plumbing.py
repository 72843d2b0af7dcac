"""Connection and transactions: an autocommit connection with explicit transactions; busy or
locked re-raised as ``TransientError``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runs.engine.connectors.base import (
    SchemaCache,
    SchemaInfo,
)
from runs.engine.connectors.base.dialect import Clause
from runs.engine.errors import TransientError

from .operations import OPS

BUSY_TIMEOUT_MS = 30_000


class SqlitePlumbing(SchemaCache):
    """The connection every role uses: autocommit, explicit transactions."""

    kind = "sqlite"
    ops = OPS

    def __init__(self, params: dict[str, Any]) -> None:
        self._path = str(params["path"])
        self._busy_ms = int(params.get("busy_timeout_ms") or BUSY_TIMEOUT_MS)
        self._conn: sqlite3.Connection | None = None
        self._schema: SchemaInfo | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,
                timeout=self._busy_ms / 1000,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms:d}")
            self._conn = conn
        return self._conn

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction (BEGIN IMMEDIATE when writing); busy/locked -> TransientError."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise TransientError(str(exc)) from exc
            raise

    def _queries(self, *queries: Clause) -> list[list[tuple]]:
        """The rows of each (query, arguments), all in one transaction."""
        with self._tx() as conn:
            return [conn.execute(query, args).fetchall() for query, args in queries]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
