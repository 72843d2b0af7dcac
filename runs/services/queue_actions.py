"""The error queue's manual actions: correct a record's source values, ignore records
with a reason (re-processing is ``queue``); and the queue's upkeep when a run ends
(supersede earlier failures, refresh the planner's statistics)."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, ConflictError, PermissionDeniedError
from migration_planner.lib.roles import refusal_text
from runs.enums import FailedRecordStatus, RunMode, RunStatus
from runs.models import CarriedBatch, FailedRecord, FailedRecordTally, Run

from .carry_refs import carries_any, failed_records_materialise, failed_records_standing
from .queue import WORKABLE
from .queue_guard import failed_records_refuse_rolling_back

logger = logging.getLogger(__name__)


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


def _refuse_read_only(record: FailedRecord) -> None:
    """A superseded or carried record is kept read-only: correcting it would make a record of
    a rolled-back run (or one a later run stands for) open again, as "fixed"."""
    if record.status == FailedRecordStatus.SUPERSEDED and record.run.status == (
        RunStatus.ROLLED_BACK
    ):
        raise ConflictError(
            f"Run #{record.run_id} was rolled back; its failed records are superseded (kept, "
            "read-only)."
        )
    if record.status == FailedRecordStatus.SUPERSEDED:
        raise ConflictError(
            "This failed record is superseded by a later run's record of the same row (kept, "
            "read-only): work that one."
        )
    if record.status == FailedRecordStatus.CARRIED:
        raise ConflictError(
            "This failed record was carried into a later run (kept, read-only): work it there."
        )


@transaction.atomic
def failed_record_correct(
    *, record: FailedRecord, user, values: dict[str, str | None]
) -> FailedRecord:
    """Store corrected source values on a record (status fixed); a record carried by
    reference is first copied into the run answering for it, and the copy corrected. Returns
    the record corrected. Raises ApplicationError for a column the source row does not have,
    ConflictError (409) at once while its run is being rolled back, and for a record kept
    read-only (superseded — its run rolled back, or a later run's record — or carried)."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError(refusal_text("mp.work_queue"))
    failed_records_refuse_rolling_back(FailedRecord.objects.filter(pk=record.pk), lock=True)
    (pk,) = failed_records_materialise(record_ids=[record.pk])
    # as stored now, under its lock: a rollback may have ended since the caller read it
    record = FailedRecord.objects.select_for_update(no_key=True).select_related("run").get(pk=pk)
    _refuse_read_only(record)
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
    return record


@transaction.atomic
def failed_record_ignore(*, records: QuerySet[FailedRecord], user, reason: str) -> int:
    """Close records as ignored with a reason (required); those carried by reference are
    copied into the run answering for them first, and the copies closed. Returns how many.
    Raises ConflictError (409) at once, nothing closed, while a run of theirs is being rolled
    back."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError(refusal_text("mp.work_queue"))
    if not reason.strip():
        raise ApplicationError("Say why the records are ignored.", field="reason")
    failed_records_refuse_rolling_back(records, lock=True)
    records = failed_records_standing(records)
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


def _earlier_runs(run: Run):
    """Runs into the same target before ``run``, of its kind (dry runs or writing runs)."""
    earlier = Run.objects.filter(target_id=run.target_id, pk__lt=run.pk)
    if run.mode == RunMode.DRY_RUN:
        return earlier.filter(mode=RunMode.DRY_RUN)
    return earlier.exclude(mode=RunMode.DRY_RUN)


def _same_row_in(run: Run) -> Exists:
    return Exists(
        FailedRecord.objects.filter(
            run_id=run.pk, entity=OuterRef("entity"), source_key=OuterRef("source_key")
        )
    )


def _workable_earlier(run: Run) -> list[int]:
    """The earlier runs whose tally (PostgreSQL; its triggers write in the records'
    transaction) counts any open or fixed record."""
    return list(
        FailedRecordTally.objects.filter(
            run_id__in=_earlier_runs(run).values("pk"), status__in=WORKABLE
        )
        .values("run_id")
        .annotate(n=Sum("n"))
        .filter(n__gt=0)
        .values_list("run_id", flat=True)
    )


def failed_records_supersede(*, run: Run) -> int:
    """Mark open/fixed records of earlier runs into the same target (dry runs only by dry
    runs, writing runs by writing runs) as superseded where ``run`` recorded the same
    (entity, source key) again: the queue keeps the latest record of a failing row (the older
    ones can no longer be re-processed). Idempotent; returns how many it marked."""
    earlier = _earlier_runs(run).values("pk")
    if connection.vendor == "postgresql":
        # Only runs the tally counts workable records of: after a re-run that carried every
        # failure the earlier run has none, and the (run, status) index's ~166 k dead "open"
        # entries of its records (until vacuum) are not walked to find so (1.26 s at 1 M).
        earlier = _workable_earlier(run)
        if not earlier:
            return 0
    held = Q(run_id__in=earlier)
    if carries_any():  # and records they carry by reference (the trigger charges them there)
        referred = CarriedBatch.objects.filter(run_id__in=earlier, rolled_back=False)
        held |= Q(batch_id__in=referred.values("source_batch_id"))
    return (
        FailedRecord.objects.filter(held, status__in=WORKABLE)
        .filter(_same_row_in(run))
        .update(status=FailedRecordStatus.SUPERSEDED)
    )


def failed_records_unsupersede(*, run: Run) -> int:
    """``run`` was rolled back: per (entity, source key) it recorded, the newest earlier run's
    record that it superseded (that run not rolled back) is open again, as the target holds
    that run's outcome again. Inside the rollback's transaction; returns how many reopened."""
    candidates = (
        FailedRecord.objects.filter(
            run_id__in=_earlier_runs(run).exclude(status=RunStatus.ROLLED_BACK).values("pk"),
            status=FailedRecordStatus.SUPERSEDED,
        )
        .filter(_same_row_in(run))
        .order_by("-run_id")
        .values_list("pk", "entity", "source_key")
    )
    newest: dict[tuple[str, str], int] = {}
    for pk, entity, key in candidates.iterator(chunk_size=2000):
        newest.setdefault((entity, key), pk)
    ids = list(newest.values())
    return sum(
        FailedRecord.objects.filter(pk__in=ids[i : i + 2000]).update(status=FailedRecordStatus.OPEN)
        for i in range(0, len(ids), 2000)
    )


ANALYZE_AFTER = 1_000  # failed records of a run past which its end refreshes the statistics
ANALYZE_LOCK_WAIT = "1s"  # longer behind another ANALYZE or a (wraparound) vacuum: skipped


def failed_records_analyze(*, run: Run) -> bool:
    """ANALYZE runs_failedrecord after a run that recorded ANALYZE_AFTER or more failed records
    (PostgreSQL): until then the planner guesses ~1 record for a run it has no statistics of
    and sorts all of them for the queue's first page instead of reading it by index.
    Idempotent, writes no rows; never raises a database error (a table another session is
    vacuuming or analysing is skipped after ANALYZE_LOCK_WAIT); returns whether it analysed.
    Failures carried by reference are not records of the run: a re-run that carried them all
    so wrote none (0.57 s of ANALYZE at 1 M for nothing)."""
    if connection.vendor != "postgresql" or run.failed < ANALYZE_AFTER:
        return False
    referred = CarriedBatch.objects.filter(run=run).aggregate(n=Sum("records"))["n"] or 0
    if run.failed - referred < ANALYZE_AFTER:
        return False
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = %s", [ANALYZE_LOCK_WAIT])
            cursor.execute("ANALYZE runs_failedrecord")
    except DatabaseError as exc:
        logger.warning("run %s: failed records not analysed (%s)", run.pk, exc)
        return False
    return True
