"""Connection and cursors (PyMySQL), the server version, transient errors, and the refusal of
every target call (MySQL systems are sources only)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import pymysql

from runs.engine.connectors.base import (
    ArrowTextSource,
    SchemaInfo,
)
from runs.engine.connectors.base.dialect import Clause
from runs.engine.errors import EngineError, TransientError

from .operations import OPS

DEFAULT_PORT = 3306


# Client-side error codes (2003 cannot connect, 2006 gone away, 2013 lost connection) and
# server ones a retry can cure (1205 lock wait timeout, 1213 deadlock, 1040 too many
# connections, 1053 server shutdown, 1927 connection killed).
_TRANSIENT_CODES = frozenset({1040, 1053, 1205, 1213, 1927, 2003, 2006, 2013})


class _NoClearText:
    """PyMySQL auth-plugin handler for the plugins that send the password in the clear
    (mysql_clear_password, PAM's dialog): refuses, as PostgreSQL's require_auth=!password."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def authenticate(self, packet: Any) -> Any:
        raise pymysql.err.OperationalError(
            2059,
            "the server asked for the password in cleartext (mysql_clear_password or "
            "dialog): refused, the password was not sent",
        )


NO_CLEARTEXT_AUTH = {"mysql_clear_password": _NoClearText, "dialog": _NoClearText}


def _is_transient(exc: BaseException) -> bool:
    args = getattr(exc, "args", ())
    return bool(args) and isinstance(args[0], int) and args[0] in _TRANSIENT_CODES


def _error(exc: BaseException, what: str = "MySQL") -> EngineError:
    """The driver error as TransientError (retry may cure it) or EngineError, message only."""
    args = getattr(exc, "args", ())
    message = str(args[1]) if len(args) > 1 else str(exc)
    cls = TransientError if _is_transient(exc) else EngineError
    return cls(f"{what}: {message}")


class MysqlPlumbing(ArrowTextSource):
    """The connection every role uses; target calls are refused."""

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = {k: v for k, v in params.items() if v not in (None, "")}
        self._conn: Any = None
        self._schema: SchemaInfo | None = None

    def _connection(self) -> Any:
        if self._conn is None or not self._conn.open:
            p = self._params
            try:
                conn = pymysql.connect(
                    host=p.get("host", "127.0.0.1"),
                    port=int(p.get("port") or DEFAULT_PORT),
                    user=p.get("user"),
                    password=p.get("password", ""),
                    database=p.get("dbname"),
                    charset="utf8mb4",
                    autocommit=True,
                    connect_timeout=int(p.get("connect_timeout") or 10),
                    auth_plugin_map=NO_CLEARTEXT_AUTH,
                )
            except pymysql.err.OperationalError as exc:
                raise _error(exc, "cannot connect to MySQL") from exc
            with conn.cursor() as cur:
                cur.execute("SET SESSION time_zone = '+00:00'")
            self._conn = conn
        return self._conn

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor on the autocommit connection; driver errors become Transient/EngineError."""
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                yield cur
        except pymysql.Error as exc:
            if _is_transient(exc):
                self.close()
            raise _error(exc) from exc

    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._cursor() as cur:
            cur.execute(query, tuple(args))  # always formatted: identifiers carry ``%%``
            return list(cur.fetchall())

    def _queries(self, *queries: Clause) -> list[list[tuple]]:
        """The rows of each (query, arguments), one after the other (autocommit)."""
        return [self._rows(query, args) for query, args in queries]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None and self._conn.open:
            with suppress(pymysql.Error):
                self._conn.close()
        self._conn = None

    def server_version(self) -> str:
        """``MySQL 8.0.x`` / ``MariaDB 10.11.x`` as the server reports it. Read-only."""
        return self.version_text(self._rows("SELECT VERSION()")[0][0])

    @staticmethod
    def version_text(version: str) -> str:
        """``VERSION()`` as a product name and number (``10.11.9-MariaDB-0+deb12u1`` ->
        ``MariaDB 10.11.9``)."""
        version = str(version)
        if "mariadb" in version.lower():
            return "MariaDB " + version.split("-MariaDB")[0]
        return "MySQL " + version

    def _source_only(self, *_: Any, **__: Any) -> Any:
        raise EngineError("MySQL systems can be migration sources only, not targets")

    kind = "mysql"
    ops = OPS
    ensure_ledger = validate_rows = load_batch = batch_result = _source_only
    keymap_lookup = rollback_batch = ledger_batches = table_checksum = row_hashes = _source_only
    ledger_order = _source_only
