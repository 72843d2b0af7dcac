"""Where a file system's staging database is on this host (no pandas: worker parents import it).

The bytes live in the application database (``StagedFile`` and its blob, written by
``services_uploads.staged_file_store``); each host keeps its own copy under DATA_DIR/staging/.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from .blobs import blob_write_to
from .models import StagedFile, System


def staged_file_local(system: System) -> str:
    """Path of the system's staging database on this host: a copy of the application
    database's bytes under DATA_DIR/staging/, made once per version (atomic rename, so
    concurrent workers never read half a file); the system's own path when nothing is kept."""
    staged = StagedFile.objects.filter(system=system).select_related("blob").first()
    if staged is None or staged.blob is None:
        return system.path
    local = Path(settings.DATA_DIR) / "staging" / f"{system.uuid}-{staged.sha256[:16]}.sqlite3"
    if not local.exists():
        blob_write_to(blob=staged.blob, path=local)
    return str(local)
