"""The error queue: re-process failed records (corrected, or with the current rules), ignore."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F, Max, QuerySet
from django.utils import timezone

from mappings.services import plan_snapshot_build
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.connections import connector_for
from runs.enums import BatchStatus, FailedRecordStatus, RunMode
from runs.models import Batch, FailedRecord, LedgerEntry, Run
from validation.audit import audit_record
from validation.enums import AuditAction

from .dispatch import enqueue_reprocess
from .hooks import after_queue_work
from .logging import run_log
from .state import run_ledger_id, run_snapshot

if TYPE_CHECKING:
    import pandas as pd

WORKABLE = (FailedRecordStatus.OPEN, FailedRecordStatus.FIXED)


@dataclass
class ReprocessResult:
    attempted: int = 0
    fixed: int = 0
    still_failing: int = 0


def _frame(records: list[FailedRecord], columns: list[str]) -> pd.DataFrame:
    import pandas as pd  # imported where used: the web app and Celery parent stay pandas-free

    rows = [{c: {**r.source_row, **r.corrected_values}.get(c) for c in columns} for r in records]
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _new_batch(run: Run, entity: str, count: int) -> Batch:
    seq = (Batch.objects.filter(run=run).aggregate(m=Max("seq"))["m"] or 0) + 1
    return Batch.objects.create(
        run=run,
        entity=entity,
        seq=seq,
        status=BatchStatus.RUNNING,
        attempts=1,
        started_at=timezone.now(),
        worker="reprocess",
        error=f"re-process of {count} failed record(s)",
    )


def _apply(run: Run, records: list[FailedRecord], outcome, batch: Batch, user) -> ReprocessResult:
    failing = {str(f.source_key): f for f in outcome.failures}
    fixed = [r for r in records if r.source_key not in failing]
    now = timezone.now()
    for record in records:
        again = failing.get(record.source_key)
        if again is not None:
            record.stage, record.message = again.stage, again.message
            record.category, record.field, record.rule = (
                again.category,
                again.field or "",
                again.rule or "",
            )
            record.transformed_row = {
                k: (None if v is None else str(v)) for k, v in (again.transformed_row or {}).items()
            }
        else:
            record.status = FailedRecordStatus.REPROCESSED
        record.handled_by, record.handled_at = user, now
    FailedRecord.objects.bulk_update(
        records,
        [
            "status",
            "stage",
            "message",
            "category",
            "field",
            "rule",
            "transformed_row",
            "handled_by",
            "handled_at",
        ],
    )
    per_batch: dict[int, int] = defaultdict(int)
    for record in fixed:
        if record.batch_id:
            per_batch[record.batch_id] += 1
    for batch_id, n in per_batch.items():
        Batch.objects.filter(pk=batch_id).update(loaded=F("loaded") + n, failed=F("failed") - n)
    Run.objects.filter(pk=run.pk).update(
        loaded=F("loaded") + len(fixed),
        failed=F("failed") - len(fixed),
        inserted=F("inserted") + outcome.inserted,
        updated=F("updated") + outcome.updated,
    )
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.DONE, finished_at=now)
    if outcome.inserted or outcome.updated:
        LedgerEntry.objects.create(
            batch=batch,
            entity=batch.entity,
            target_table="",
            inserted=outcome.inserted,
            updated=outcome.updated,
            committed_at=now,
        )
    return ReprocessResult(len(records), len(fixed), len(records) - len(fixed))


def _reprocess_group(
    run: Run, entity_name: str, records: list[FailedRecord], user, current_rules: bool
) -> ReprocessResult:
    from runs.engine.batch import process_frame, source_columns

    snapshot = plan_snapshot_build(plan=run.plan) if current_rules else run_snapshot(run)
    entity = snapshot.entity(entity_name)
    batch = _new_batch(run, entity_name, len(records))
    outcome = process_frame(
        snapshot=snapshot,
        entity=entity,
        frame=_frame(records, source_columns(entity)),
        source=connector_for(run.plan.source),
        target=connector_for(run.target),
        run_id=run_ledger_id(run),
        batch_id=batch.ledger_id,
        dry_run=run.mode == RunMode.DRY_RUN,
    )
    with transaction.atomic():
        result = _apply(run, records, outcome, batch, user)
    run_log(
        run,
        f"Re-processed {result.attempted} {entity_name} record(s) by "
        f"{getattr(user, 'username', 'the system')}: {result.fixed} fixed, "
        f"{result.still_failing} still failing.",
    )
    return result


def failed_record_reprocess(
    *, records: QuerySet[FailedRecord], user, current_rules: bool = True, reconcile: bool = True
) -> ReprocessResult:
    """Send open/fixed records through transform → load → ledger again (as a new batch of their
    run, so rollback covers it). Records that pass close as re-processed; the rest stay open
    with the new message; each run touched is reconciled again (``reconcile``, via the
    after_queue_work hooks). Raises PermissionDeniedError / ApplicationError."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError("Your role does not allow working the error queue.")
    groups: dict[tuple[int, str], list[FailedRecord]] = defaultdict(list)
    for record in records.filter(status__in=WORKABLE).select_related(
        "run__plan__source", "run__target"
    ):
        groups[(record.run_id, record.entity)].append(record)
    if not groups:
        raise ApplicationError("No open failed records match.")
    total = ReprocessResult()
    touched: dict[int, Run] = {}
    for (_, entity_name), group in groups.items():
        run = group[0].run
        if run.status in ("running", "rolling_back", "queued", "rolled_back"):
            raise ApplicationError(f"Run {run.uuid} is {run.status}; re-process after it ends.")
        result = _reprocess_group(run, entity_name, group, user, current_rules)
        touched[run.pk] = run
        total.attempted += result.attempted
        total.fixed += result.fixed
        total.still_failing += result.still_failing
    for run in touched.values() if reconcile else ():  # no report of the state before this
        after_queue_work(run, getattr(user, "username", "") or "the system")
    audit_record(
        action=AuditAction.REPROCESS,
        actor=user,
        object_repr="failed records",
        after={"attempted": total.attempted, "fixed": total.fixed},
    )
    return total


@transaction.atomic
def failed_record_correct(*, record: FailedRecord, user, values: dict[str, str | None]) -> None:
    """Store corrected source values on a record (status fixed). Raises ApplicationError for a
    column the source row does not have."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError("Your role does not allow working the error queue.")
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
        raise PermissionDeniedError("Your role does not allow working the error queue.")
    if not reason.strip():
        raise ApplicationError("Say why the records are ignored.", field="reason")
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


BACKGROUND_CHUNK = 5_000


def failed_records_reprocess_background(*, record_ids: list[int], user_id: int | None) -> str:
    """Re-process records chunk by chunk (a Celery task body); records already closed are
    skipped, so running it twice is harmless. Returns a one-line summary."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    total = ReprocessResult()
    touched: set[int] = set()
    for start in range(0, len(record_ids), BACKGROUND_CHUNK):
        chunk = FailedRecord.objects.filter(
            pk__in=record_ids[start : start + BACKGROUND_CHUNK], status__in=WORKABLE
        )
        if not chunk.exists():
            continue
        touched.update(chunk.values_list("run_id", flat=True).distinct())
        result = failed_record_reprocess(records=chunk, user=user, reconcile=False)
        total.attempted += result.attempted
        total.fixed += result.fixed
        total.still_failing += result.still_failing
    for run in Run.objects.filter(pk__in=touched):  # once per run, after every chunk
        after_queue_work(run, getattr(user, "username", "") or "the system")
    return f"{total.attempted} re-processed: {total.fixed} fixed, {total.still_failing} failing"


def failed_records_reprocess_later(*, records: QuerySet[FailedRecord], user) -> int:
    """Queue a background re-process of the selection; returns how many records. Raises
    PermissionDeniedError / ApplicationError (nothing open selected)."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError("Your role does not allow working the error queue.")
    ids = list(records.filter(status__in=WORKABLE).order_by("id").values_list("id", flat=True))
    if not ids:
        raise ApplicationError("No open failed records match.")
    enqueue_reprocess(ids, getattr(user, "pk", None))
    return len(ids)
