"""Bytes kept in the application database: blobs, a file system's staged data, uploads."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from ..enums import UploadStatus
from .systems import System


class Blob(models.Model):
    """Bytes kept in the application database in chunks (``BlobChunk``), so that a worker on
    another host reads them without a shared disk, and nobody holds them whole in memory."""

    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"blob {self.sha256[:12]} ({self.size:,} bytes)"


class BlobChunk(models.Model):
    """One piece (at most 4 MB) of a blob, in order."""

    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["blob", "seq"],
                name="blob_chunk_seq_unique",
                violation_error_message="This piece of the stored file is already stored.",
            ),
        ]

    def __str__(self) -> str:
        return f"chunk {self.seq} of blob {self.blob_id}"


class StagedFile(models.Model):
    """A file system's staging database (SQLite), kept in the application database so that a
    worker on another host reads the same data: it copies it to its own disk on first use."""

    system = models.OneToOneField(System, on_delete=models.CASCADE, related_name="staged_file")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    blob = models.OneToOneField(Blob, on_delete=models.PROTECT, null=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"staged data of {self.system_id} ({self.size:,} bytes)"


class FileUpload(models.Model):
    """A file uploaded to a file system: its raw bytes (a blob, until staged), then a worker's
    progress parsing it, and the outcome (the table and rows staged, or where it failed)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    table = models.CharField(max_length=63)
    size = models.PositiveBigIntegerField()
    blob = models.ForeignKey(Blob, on_delete=models.SET_NULL, null=True, related_name="+")
    status = models.CharField(
        max_length=10, choices=UploadStatus.choices, default=UploadStatus.QUEUED
    )
    rows_parsed = models.PositiveBigIntegerField(default=0)
    bytes_read = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveBigIntegerField(null=True, blank=True)
    columns = models.JSONField(default=list, blank=True)
    preview = models.JSONField(default=list, blank=True)
    format = models.CharField(max_length=10, blank=True)
    encoding = models.CharField(max_length=40, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    error = models.TextField(blank=True)
    error_row = models.PositiveBigIntegerField(null=True, blank=True)
    error_column = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} → {self.system_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (UploadStatus.STAGED, UploadStatus.FAILED)

    @property
    def percent(self) -> int:
        """Share of the file's bytes read so far (0-100)."""
        return min(100, int(100 * self.bytes_read / self.size)) if self.size else 100
