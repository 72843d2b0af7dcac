"""Connection and transactions: one psycopg2 connection, lazily opened; transient errors
re-raised as ``TransientError``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors

from runs.engine.connectors.base import (
    ArrowTextSource,
    SchemaInfo,
)
from runs.engine.connectors.base.dialect import Clause
from runs.engine.errors import TransientError

from .operations import OPS

_TRANSIENT = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
)


class PostgresPlumbing(ArrowTextSource):
    """The connection every role uses; one psycopg2 connection, lazily opened."""

    kind = "postgresql"
    ops = OPS

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = {k: v for k, v in params.items() if v not in (None, "")}
        self._conn: Any = None
        self._held: Any = None  # the cursor of a transaction() in progress
        self._schema: SchemaInfo | None = None
        # Rows the last batch's read-back compared (every row it wrote or left unchanged).
        self.read_back_rows = 0
        self.read_back_versions: dict[int, str] = {}  # ordinal -> xmin of the last read-back

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                # UTF8 whatever the database's encoding: COPY's bytes are UTF-8 both ways
                # (a LATIN1 database's default stored 'é' as 'Ã©', and the proof, reading
                # the same bytes as the intent, could not see it); a character the database
                # cannot hold is then the server's error, not a changed value.
                self._conn = psycopg2.connect(**{"client_encoding": "UTF8", **self._params})
            except psycopg2.OperationalError as exc:
                raise TransientError(f"cannot connect to PostgreSQL: {exc}") from exc
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction: commit on success, roll back on error; transient errors re-raised.
        Inside ``transaction()`` it is that held transaction (committed when it ends)."""
        if self._held is not None:
            yield self._held
            return
        conn = self._connection()
        try:
            with conn, conn.cursor() as cur:
                yield cur
        except _TRANSIENT as exc:
            if conn.closed == 0 and conn.get_transaction_status() > 2:
                conn.close()
            raise TransientError(str(exc).strip()) from exc

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Hold ONE transaction across several connector calls (CDC writes a group of changes
        and its checkpoint together): all of it commits at the end, or none of it."""
        with self._tx() as cur:
            self._held = cur
            try:
                yield cur
            finally:
                self._held = None

    def _queries(self, *queries: Clause) -> list[list[tuple]]:
        """The rows of each (query, arguments), all in one transaction."""
        with self._tx() as cur:
            out = []
            for query, args in queries:
                cur.execute(query, list(args) or None)
                out.append(cur.fetchall())
        return out

    def cancel(self) -> None:
        """Cancel the statement the connection runs now, from any thread (psycopg2's cancel is
        thread-safe; its caller gets an error): nothing when none runs. Idempotent."""
        conn = self._conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg2.Error):
                conn.cancel()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None
