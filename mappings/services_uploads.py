"""Uploads to file systems: the request only stores the file (streamed, size-capped); a Celery
worker parses and stages it in bounded memory, reporting progress on the ``FileUpload`` row."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, TooLargeError
from migration_planner.lib.uploads import too_large_message
from runs.engine.errors import StagingError, TransientError
from runs.engine.files import FORMATS, stage_file

from .blobs import blob_store, blob_write_to
from .enums import SystemKind, UploadStatus
from .models import Blob, FileUpload, StagedFile, System
from .services_edit import require_capability

logger = logging.getLogger(__name__)
MANAGE = "mp.manage_systems"
ACCEPTED = ", ".join(f".{f}" for f in FORMATS)
PREVIEW_ROWS = 10


class UploadBusy(Exception):
    """Another upload of the same system is being staged: try again in a moment."""


def _table_name(filename: str, table: str | None) -> str:
    if table:
        return table
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(filename).stem).strip("_") or "upload"
    return ("t_" + stem if stem[0].isdigit() else stem)[:63]


def _raw_path(upload: FileUpload) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(upload.filename).name) or "upload"
    return Path(settings.MEDIA_ROOT) / "uploads" / str(upload.system.uuid) / str(upload.uuid) / name


def _keep(upload_file, path: Path) -> None:
    """Move Django's temporary file into place (same disk: a rename), else copy it by chunks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = getattr(upload_file, "temporary_file_path", None)
    if temporary is not None:
        shutil.move(temporary(), path)
        return
    with path.open("wb") as out:
        for chunk in upload_file.chunks():
            out.write(chunk)


def file_upload_receive(*, system: System, user, upload, table: str | None = None) -> FileUpload:
    """Keep an uploaded file (already streamed to disk under the size limit) under
    MEDIA_ROOT/uploads/ and in the application database, and queue its staging on a worker.
    Transactional (the task is queued on commit); raises PermissionDeniedError or
    ApplicationError (TooLargeError past MP_UPLOAD_MAX_MB)."""
    require_capability(user, MANAGE)
    if system.kind != SystemKind.FILE:
        raise ApplicationError("Only a system of kind “file” takes uploads.", field="kind")
    limit = settings.MP_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise TooLargeError(too_large_message(upload.name, limit), field="file")
    name = _table_name(upload.name, table)
    with transaction.atomic():
        record = FileUpload.objects.create(
            system=system,
            filename=Path(upload.name).name[:255],
            table=name,
            size=upload.size,
            created_by=user,
        )
        path = _raw_path(record)
        _keep(upload, path)
        record.blob = blob_store(path=path)
        record.save(update_fields=["blob"])
        audit_record(
            action=AuditAction.UPDATE,
            actor=user,
            obj=system,
            after={"uploaded": record.filename, "bytes": record.size, "table": name},
        )
        transaction.on_commit(lambda: _enqueue(record.pk))
    return record


def _enqueue(upload_id: int) -> None:
    from .tasks import file_upload_stage_task

    file_upload_stage_task.delay(upload_id)


def _claim(upload_id: int) -> FileUpload | None:
    """Move the upload to parsing (a redelivered message resumes its own parsing); None when
    it is finished or gone; UploadBusy while another upload of the system is parsing."""
    with transaction.atomic():
        upload = FileUpload.objects.select_related("system").filter(pk=upload_id).first()
        if upload is None or upload.finished:
            return None
        System.objects.select_for_update().filter(pk=upload.system_id).first()
        if (
            FileUpload.objects.filter(system_id=upload.system_id, status=UploadStatus.PARSING)
            .exclude(pk=upload.pk)
            .exists()
        ):
            raise UploadBusy
        FileUpload.objects.filter(pk=upload.pk).update(
            status=UploadStatus.PARSING, rows_parsed=0, bytes_read=0
        )
    upload.refresh_from_db()
    return upload


def file_upload_stage(*, upload_id: int) -> FileUpload | None:
    """Parse a queued upload and stage it into its system's staging database (replacing the
    table of the same name), reporting rows/bytes on the row as it goes; the outcome (table,
    rows, first rows, or the error with row/column) lands on the row. Idempotent: a finished
    upload is left alone, a re-delivered one is staged again from the start. Raises UploadBusy
    while another upload of the system is parsing, TransientError when worth a retry."""
    upload = _claim(upload_id)
    if upload is None:
        return None
    system = upload.system
    work = Path(settings.DATA_DIR) / "staging" / f"{system.uuid}.{upload.uuid}.sqlite3"
    try:
        raw = _raw_path(upload)
        if not raw.exists() and upload.blob_id:
            blob_write_to(blob=upload.blob, path=raw)  # parsed on another host than the web's
        _current_staging_copy(system, work)

        def progress(rows: int, bytes_read: int) -> None:
            FileUpload.objects.filter(pk=upload.pk).update(rows_parsed=rows, bytes_read=bytes_read)

        report = stage_file(
            raw,
            dest=str(work),
            table=upload.table,
            replace=True,
            preview_rows=PREVIEW_ROWS,
            progress=progress,
        )
    except StagingError as exc:
        work.unlink(missing_ok=True)
        return _finish_failed(upload, exc)
    except TransientError:
        work.unlink(missing_ok=True)
        raise
    except Exception as exc:  # a time limit, a full disk: never left "parsing" for ever
        work.unlink(missing_ok=True)
        logger.exception("upload %s: staging failed", upload.pk)
        _finish_failed(upload, StagingError(f"staging stopped: {type(exc).__name__}: {exc}"))
        raise
    dest = work.with_name(f"{system.uuid}.sqlite3")
    work.replace(dest)
    with transaction.atomic():
        staged_file_store(system=system, path=dest)
        system.path = str(dest)
        system.save(update_fields=["path", "updated_at"])
        FileUpload.objects.filter(pk=upload.pk).update(
            status=UploadStatus.STAGED,
            rows=report.rows,
            rows_parsed=report.rows,
            bytes_read=upload.size,
            columns=report.columns,
            preview=[list(row.values()) for row in report.preview],
            format=report.format,
            encoding=report.encoding or "",
            delimiter=report.delimiter or "",
            finished_at=timezone.now(),
            blob=None,
        )
        _drop_blob(upload.blob_id)
        audit_record(
            action=AuditAction.UPDATE,
            actor=upload.created_by,
            obj=system,
            after={"staged": upload.table, "rows": report.rows, "file": upload.filename},
        )
    upload.refresh_from_db()
    return upload


def _finish_failed(upload: FileUpload, exc: StagingError) -> FileUpload:
    with transaction.atomic():
        FileUpload.objects.filter(pk=upload.pk).update(
            status=UploadStatus.FAILED,
            error=f"{upload.filename}: {exc}",
            error_row=exc.row,
            error_column=exc.column or "",
            finished_at=timezone.now(),
            blob=None,
        )
        _drop_blob(upload.blob_id)
    upload.refresh_from_db()
    return upload


def _drop_blob(blob_id: int | None) -> None:
    if blob_id is not None:
        Blob.objects.filter(pk=blob_id).delete()


def _current_staging_copy(system: System, work: Path) -> None:
    """Start from the system's current staging database (this host's copy, or the one kept
    in the application database), so earlier tables survive an upload staged on any host."""
    from .staging import staged_file_local

    work.parent.mkdir(parents=True, exist_ok=True)
    work.unlink(missing_ok=True)
    staged = StagedFile.objects.filter(system=system).exists()
    if staged:
        shutil.copyfile(staged_file_local(system), work)


def staged_file_store(*, system: System, path: Path) -> StagedFile:
    """Keep the staging database's bytes in the application database in chunks (replacing the
    previous copy), for workers on other hosts. Runs in the caller's transaction."""
    blob = blob_store(path=path)
    old = StagedFile.objects.filter(system=system).values_list("blob_id", flat=True).first()
    staged, _ = StagedFile.objects.update_or_create(
        system=system, defaults={"sha256": blob.sha256, "size": blob.size, "blob": blob}
    )
    _drop_blob(old)
    return staged
