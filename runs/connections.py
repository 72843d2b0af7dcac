"""Engine connectors opened from System rows, cached per worker process."""

from __future__ import annotations

import atexit
import threading

from mappings.enums import SystemKind
from mappings.models import System
from mappings.services_systems import staged_file_local
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
            params = system.connection_params()
            if system.kind == SystemKind.FILE:  # this host's copy: no shared file system
                params["path"] = staged_file_local(system)
            conn = _cache[key] = connect(system.kind, params)
        return conn


def connectors_close() -> None:
    """Close every cached connector (process exit, tests)."""
    with _lock:
        while _cache:
            _cache.popitem()[1].close()


atexit.register(connectors_close)
