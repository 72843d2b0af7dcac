"""Where a file system's staging database is on this host (no pandas: worker parents import it).

The bytes live in the application database (``StagedFile``, written by
``services_systems.staged_file_store``); each host keeps its own copy under DATA_DIR/staging/.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from .models import StagedFile, System


def staged_file_local(system: System) -> str:
    """Path of the system's staging database on this host: a copy of the application
    database's bytes under DATA_DIR/staging/, made once per version (atomic rename, so
    concurrent workers never read half a file); the system's own path when nothing is kept."""
    sha = StagedFile.objects.filter(system=system).values_list("sha256", flat=True).first()
    if sha is None:
        return system.path
    local = Path(settings.DATA_DIR) / "staging" / f"{system.uuid}-{sha[:16]}.sqlite3"
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        data = StagedFile.objects.values_list("content", flat=True).get(system=system)
        partial = local.with_name(f"{local.name}.{os.getpid()}.part")
        partial.write_bytes(bytes(data))
        partial.replace(local)
    return str(local)
