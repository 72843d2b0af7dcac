"""Engine error types (no Django)."""


class EngineError(Exception):
    """Base class for engine failures that abort a batch or a run."""


class SchemaError(EngineError):
    """A table or column named by the plan does not exist in the introspected schema."""


class TransientError(EngineError):
    """A failure worth retrying (lost connection, serialization failure, deadlock)."""


class StagingError(EngineError):
    """An uploaded file could not be staged; carries the row/byte position and the reason."""

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        byte: int | None = None,
    ) -> None:
        super().__init__(message)
        self.row = row
        self.column = column
        self.byte = byte


# SQLSTATEs of a server going away, starting up, refusing connections for now, or asking for
# the transaction to be tried again. Class 08 (connection exception) counts as a whole.
_UNAVAILABLE_SQLSTATES = frozenset(
    {
        "57P01",  # admin_shutdown: terminating connection due to administrator command
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the database system is starting up / in recovery
        "53300",  # too_many_connections
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
    }
)
# What the client library says when there is no server answer at all (no SQLSTATE).
_UNAVAILABLE_TEXTS = (
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery",
    "the database system is not yet accepting connections",
    "in recovery mode",
    "connection refused",
    "could not connect to server",
    "server closed the connection unexpectedly",
    "terminating connection",
    "connection already closed",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    "ssl syscall error",
    "ssl connection has been closed unexpectedly",
    "timeout expired",
    "lost connection to",
    "server has gone away",
    "can't connect to",
)


def is_unavailable(exc: BaseException | None) -> bool:
    """True when ``exc``, or an error it was raised from, says a database is restarting,
    down or unreachable (or asked for a retry: serialization failure, deadlock). Pure."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, TransientError):
            return True
        code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
        if isinstance(code, str) and (code.startswith("08") or code in _UNAVAILABLE_SQLSTATES):
            return True
        if not code and _looks_like_db_error(exc):
            text = str(exc).lower()
            if any(marker in text for marker in _UNAVAILABLE_TEXTS):
                return True
        exc = exc.__cause__
    return False


def _looks_like_db_error(exc: BaseException) -> bool:
    """A database driver's (or Django's) error class: psycopg2, pymysql, django.db, sqlite3."""
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"OperationalError", "InterfaceError", "DatabaseError"})
