"""Uploads stream to disk (Django's temporary-file handler) and stop at MP_UPLOAD_MAX_MB."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload


class SizeLimitUploadHandler(FileUploadHandler):
    """Counts an upload's bytes as they arrive; past the limit the upload stops (the rest of
    the body is read and dropped, nothing is kept) and ``request.upload_refused`` says why."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limit = settings.MP_UPLOAD_MAX_BYTES
        if start + len(raw_data) > limit:
            self.request.upload_refused = too_large_message(self.file_name, limit)
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def too_large_message(name: str, limit: int) -> str:
    """The refusal of a file over the limit, as the page, the API (413) and the log say it."""
    return (
        f"“{name}” is larger than the upload limit of {limit / 2**20:g} MB "
        "(MP_UPLOAD_MAX_MB): nothing was kept."
    )


def upload_refusal(request) -> str | None:
    """Why the request's upload was refused (too large), or None."""
    return getattr(request, "upload_refused", None) or getattr(
        getattr(request, "_request", None), "upload_refused", None
    )
