"""Engine connectors opened from System rows, cached per thread.

A connector holds one database connection, which must never be used by two threads at once
(psycopg2: "connection cannot be re-entered recursively" under gunicorn threads). So each
thread gets its own connector per system; connectors of threads that have ended are closed
the next time any thread asks for one.
"""

from __future__ import annotations

import atexit
import threading

from mappings.destinations import guard_params
from mappings.enums import SystemKind
from mappings.models import System
from mappings.staging import staged_file_local
from runs.engine.connectors import Connector, connect

# (thread ident, system pk, system version) -> connector
_cache: dict[tuple[int, int, str], Connector] = {}
_lock = threading.Lock()


def _close_dead_threads() -> None:
    alive = {t.ident for t in threading.enumerate()}
    for key in [k for k in _cache if k[0] not in alive]:
        _cache.pop(key).close()


def connector_for(system: System) -> Connector:
    """This thread's connector for ``system`` (decrypting its secret); reused by the thread
    until the system changes. Never shared between threads."""
    me = threading.get_ident()
    key = (me, system.pk, system.updated_at.isoformat() if system.updated_at else "")
    with _lock:
        conn = _cache.get(key)
        if conn is None:
            _close_dead_threads()
            for stale in [k for k in _cache if k[:2] == (me, system.pk)]:
                _cache.pop(stale).close()
            conn = _cache[key] = connect(*connection_spec(system))
        return conn


def connection_spec(system: System) -> tuple[str, dict]:
    """(engine kind, guarded parameters) to ``connect`` to ``system`` — for a helper thread
    that opens (and closes) its own connector; may read the database (a file's staged copy)."""
    if system.kind == SystemKind.FILE:
        # its staging SQLite, this host's copy: the web host's path (system.path) may
        # lie outside this host's data directory; connect checks the copy against it
        return "sqlite", {"path": staged_file_local(system)} | guard_params(system.kind)
    return system.kind, system.guarded_connection_params()


def connectors_close() -> None:
    """Close every cached connector of every thread (process exit, tests)."""
    with _lock:
        while _cache:
            _cache.popitem()[1].close()


atexit.register(connectors_close)
