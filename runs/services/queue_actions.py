"""The error queue's manual actions: correct a record's source values, ignore records
with a reason (re-processing is ``queue``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from migration_planner.lib.roles import refusal_text
from runs.enums import FailedRecordStatus, RunMode
from runs.models import FailedRecord, Run

from .queue import WORKABLE


def _refuse_production(runs: QuerySet[Run], user, action: str) -> None:
    """Only an operator (or admin) may correct or ignore records of a production run: a
    correction is loaded into production by the next re-process, and ignoring closes a
    production failure. Dry runs write nothing and stay open to analysts."""
    if user is None or user.has_perm("mp.launch_production_run"):
        return
    targets = {r.target for r in runs.exclude(mode=RunMode.DRY_RUN).select_related("target")}
    for target in sorted(targets, key=lambda t: t.name):
        if target.is_production:
            raise PermissionDeniedError(
                f"“{target.name}” is a production target: only an operator may {action} "
                "its failed records."
            )


@transaction.atomic
def failed_record_correct(*, record: FailedRecord, user, values: dict[str, str | None]) -> None:
    """Store corrected source values on a record (status fixed). Raises ApplicationError for a
    column the source row does not have."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError(refusal_text("mp.work_queue"))
    _refuse_production(Run.objects.filter(pk=record.run_id), user, "correct")
    unknown = sorted(set(values) - set(record.source_row))
    if unknown:
        raise ApplicationError(f"Unknown source column “{unknown[0]}”.", field=unknown[0])
    before = dict(record.corrected_values)
    record.corrected_values = {**record.corrected_values, **values}
    record.status = FailedRecordStatus.FIXED
    record.handled_by, record.handled_at = user, timezone.now()
    record.save(update_fields=["corrected_values", "status", "handled_by", "handled_at"])
    audit_record(
        action=AuditAction.UPDATE,
        actor=user,
        obj=record,
        before=before,
        after=record.corrected_values,
    )


@transaction.atomic
def failed_record_ignore(*, records: QuerySet[FailedRecord], user, reason: str) -> int:
    """Close records as ignored with a reason (required). Returns how many."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError(refusal_text("mp.work_queue"))
    if not reason.strip():
        raise ApplicationError("Say why the records are ignored.", field="reason")
    open_runs = records.filter(status__in=WORKABLE).values("run_id")
    _refuse_production(Run.objects.filter(pk__in=open_runs), user, "ignore")
    count = records.filter(status__in=WORKABLE).update(
        status=FailedRecordStatus.IGNORED,
        ignore_reason=reason.strip(),
        handled_by=user,
        handled_at=timezone.now(),
    )
    audit_record(
        action=AuditAction.IGNORE,
        actor=user,
        object_repr=f"{count} failed records",
        after={"reason": reason.strip(), "count": count},
    )
    return count
