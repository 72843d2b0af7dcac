"""Engine connectors opened from System rows, cached per worker process."""

from __future__ import annotations

import atexit
import threading

from mappings.enums import SystemKind
from mappings.models import System
from mappings.staging import staged_file_local
from runs.engine.connectors import Connector, connect

_cache: dict[tuple[int, str], Connector] = {}
_lock = threading.Lock()


def connector_for(system: System) -> Connector:
    """A connector for ``system`` (decrypting its secret); reused until the system changes."""
    key = (system.pk, system.updated_at.isoformat() if system.updated_at else "")
    with _lock:
        conn = _cache.get(key)
        if conn is None:
            for stale in [k for k in _cache if k[0] == system.pk]:
                _cache.pop(stale).close()
            params, kind = system.connection_params(), system.kind
            if system.kind == SystemKind.FILE:  # its staging SQLite, this host's copy
                params["path"], kind = staged_file_local(system), "sqlite"
            conn = _cache[key] = connect(kind, params)
        return conn


def connectors_close() -> None:
    """Close every cached connector (process exit, tests)."""
    with _lock:
        while _cache:
            _cache.popitem()[1].close()


atexit.register(connectors_close)
