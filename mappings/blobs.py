"""Bytes in the application database, in chunks: written and read a chunk at a time."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .models import Blob, BlobChunk

CHUNK = 4 * 1024 * 1024


def blob_store(*, path: Path) -> Blob:
    """Copy a file into a new blob, CHUNK bytes at a time (never the whole file in memory).
    Runs in the caller's transaction; not idempotent (each call makes a new blob)."""
    blob = Blob.objects.create(sha256="", size=0)
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for seq, data in enumerate(iter(lambda: handle.read(CHUNK), b"")):
            BlobChunk.objects.create(blob=blob, seq=seq, data=data)
            digest.update(data)
            size += len(data)
    blob.sha256, blob.size = digest.hexdigest(), size
    blob.save(update_fields=["sha256", "size"])
    return blob


def blob_write_to(*, blob: Blob, path: Path) -> Path:
    """Write the blob's bytes to ``path`` a chunk at a time, through a private partial file
    renamed into place (concurrent writers never expose half a file). Idempotent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    with partial.open("wb") as out:
        for seq in (
            BlobChunk.objects.filter(blob=blob).order_by("seq").values_list("seq", flat=True)
        ):
            out.write(
                bytes(BlobChunk.objects.values_list("data", flat=True).get(blob=blob, seq=seq))
            )
    partial.replace(path)
    return path
