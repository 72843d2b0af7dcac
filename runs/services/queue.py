"""The error queue: re-process failed records (corrected, or with the current rules), ignore."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from django.db import connection, transaction
from django.db.models import F, Max, QuerySet
from django.utils import timezone

from mappings.services import plan_snapshot_build
from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, ConflictError, PermissionDeniedError
from migration_planner.lib.roles import refusal_text
from runs.connections import connector_for
from runs.enums import BatchStatus, FailedRecordStatus, LeasePurpose, LogLevel, RunMode, RunStatus
from runs.models import Batch, FailedRecord, LedgerEntry, Run

from .carry_refs import failed_records_standing
from .dispatch import enqueue_reprocess
from .hooks import after_queue_work
from .leases import table_lease_acquire, table_lease_release
from .logging import run_log
from .queue_guard import failed_records_refuse_rolling_back, run_refuse_rolled_back_now
from .queue_rules import reprocess_rules_choose
from .recording import _error_values, _json_safe
from .rollback_order import blocker_extra, run_rollback_blockers, run_summary, run_tables
from .state import run_ledger_id, run_snapshot

if TYPE_CHECKING:
    import pandas as pd

WORKABLE = (FailedRecordStatus.OPEN, FailedRecordStatus.FIXED)
STILL_RUNNING = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.CANCELLING)
_FAILING_FIELDS = ("stage", "message", "category", "field", "rule", "transformed_row", "errors")
_KEPT_FIELDS = ("stage", "category", "field", "rule", "message")  # of a replaced failure


@dataclass
class ReprocessResult:
    attempted: int = 0
    fixed: int = 0
    still_failing: int = 0

    def add(self, other: ReprocessResult) -> None:
        """Fold another result into this one."""
        self.attempted += other.attempted
        self.fixed += other.fixed
        self.still_failing += other.still_failing


def _frame(records: list[FailedRecord], columns: list[str]) -> pd.DataFrame:
    import pandas as pd  # imported where used: the web app and Celery parent stay pandas-free

    rows = [{c: {**r.source_row, **r.corrected_values}.get(c) for c in columns} for r in records]
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _check_run(run: Run) -> None:
    """Refuse re-processing while the run may still write or is being (or was) undone."""
    run_refuse_rolled_back_now(run)
    if run.status == RunStatus.ROLLED_BACK:
        raise ConflictError(
            f"Run #{run.pk} was rolled back; its failed records are superseded (kept, read-only)."
        )
    if run.status in STILL_RUNNING:
        raise ConflictError(
            f"Run #{run.pk} is {run.get_status_display().lower()}; re-process after it ends."
        )


def _check_newest(run: Run, table: str) -> None:
    """Rollbacks form a stack, so re-processing may only add to the newest run that wrote the
    table (else undoing a later run would restore its before-images over the new rows)."""
    later = [r for r in run_rollback_blockers(run=run) if table in run_tables(r)]
    if later:
        raise ConflictError(
            f"Run #{run.pk}'s {table} records cannot be re-processed: {run_summary(later[0])} "
            f"wrote {table} since. Re-process the newest run's records, or roll the later "
            "run(s) back first.",
            extra=blocker_extra(later),
        )


@transaction.atomic
def _start(run: Run, entity, record_ids: list[int], user) -> tuple[Batch, list[FailedRecord]]:
    """Lock the run, check it, lease the entity's table (not for a dry run), claim a batch
    number and re-read the records still workable. Transactional; raises ConflictError."""
    locked = Run.objects.select_for_update().get(pk=run.pk)
    _check_run(locked)
    if locked.mode != RunMode.DRY_RUN:
        _check_newest(locked, entity.target_table)
        table_lease_acquire(
            run=locked, tables=[entity.target_table], purpose=LeasePurpose.REPROCESS, user=user
        )
    records = list(
        FailedRecord.objects.filter(pk__in=record_ids, status__in=WORKABLE).order_by("pk")
    )
    seq = (Batch.objects.filter(run=locked).aggregate(m=Max("seq"))["m"] or 0) + 1
    batch = Batch.objects.create(
        run=locked,
        entity=entity.name,
        seq=seq,
        status=BatchStatus.RUNNING,
        attempts=1,
        started_at=timezone.now(),
        worker="reprocess",
        error=f"re-process of {len(records)} failed record(s)",
    )
    return batch, records


def _failing_update(failing: list[tuple[FailedRecord, object]], user, now) -> None:
    """Store the new failure of records still failing: one set-based UPDATE (PostgreSQL)."""
    values = {
        "stage": [f.stage for _, f in failing],
        "message": [f.message for _, f in failing],
        "category": [f.category for _, f in failing],
        "field": [f.field or "" for _, f in failing],
        "rule": [f.rule or "" for _, f in failing],
        "transformed_row": [_json_text(_json_safe(f.transformed_row)) for _, f in failing],
        "errors": [_json_text(_error_values(f)) for _, f in failing],
    }
    if connection.vendor != "postgresql":
        records = [r for r, _ in failing]
        for record, (_, f) in zip(records, failing, strict=True):
            before = {name: getattr(record, name) for name in _KEPT_FIELDS}
            record.earlier_failures = [*(record.earlier_failures or []), before]
            for name in _FAILING_FIELDS:
                setattr(record, name, getattr(f, name) or "")
            record.transformed_row = _json_safe(f.transformed_row)
            record.errors = _error_values(f)
            record.handled_by, record.handled_at = user, now
        fields = [*_FAILING_FIELDS, "earlier_failures", "handled_by", "handled_at"]
        FailedRecord.objects.bulk_update(records, fields, batch_size=500)
        return
    table = FailedRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS f SET stage = v.stage, message = v.message, "  # noqa: S608 - our table
            # the failure being replaced (old values of f) is kept, oldest first
            "earlier_failures = (coalesce(f.earlier_failures::jsonb, '[]'::jsonb) "
            "|| jsonb_build_array(jsonb_build_object("
            "'stage', f.stage, 'category', f.category, 'field', f.field, 'rule', f.rule, "
            "'message', f.message)))::json, "
            "category = v.category, field = v.field, rule = v.rule, "
            "transformed_row = v.transformed_row::json, errors = v.errors::json, "
            "handled_by_id = %s, handled_at = %s FROM unnest(%s::bigint[], %s::text[], "
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "AS v(id, stage, message, category, field, rule, transformed_row, errors) "
            "WHERE f.id = v.id",
            [
                getattr(user, "pk", None),
                now,
                [r.pk for r, _ in failing],
                *(values[name] for name in _FAILING_FIELDS),
            ],
        )


def _json_text(value: object) -> str:
    return orjson.dumps(value, default=str).decode()


def _apply(
    run: Run, records: list[FailedRecord], outcome, batch: Batch, entity, user
) -> ReprocessResult:
    """Close fixed records, store new failures, move counts failed → loaded and index the
    batch's ledger: set-based statements, one transaction (the caller's)."""
    failing = {str(f.source_key): f for f in outcome.failures}
    fixed = [r for r in records if r.source_key not in failing]
    now = timezone.now()
    FailedRecord.objects.filter(pk__in=[r.pk for r in fixed]).update(
        status=FailedRecordStatus.REPROCESSED, handled_by=user, handled_at=now
    )
    again = [(r, failing[r.source_key]) for r in records if r.source_key in failing]
    if again:
        _failing_update(again, user, now)
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
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.DONE,
        finished_at=now,
        inserted=outcome.inserted,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
    )
    if outcome.inserted or outcome.updated:
        LedgerEntry.objects.create(
            batch=batch,
            entity=batch.entity,
            target_table=entity.target_table,
            inserted=outcome.inserted,
            updated=outcome.updated,
            committed_at=now,
        )
    return ReprocessResult(len(records), len(fixed), len(records) - len(fixed))


def _abandon(run: Run, batch: Batch, exc: Exception) -> None:
    """A re-process that raised: keep the batch only if the target committed it (its ledger
    says so; the records stay open and a rollback still undoes it), else drop it."""
    try:
        committed = (
            run.mode != RunMode.DRY_RUN
            and connector_for(run.target).batch_result(run_ledger_id(run), batch.ledger_id)
            is not None
        )
    except Exception:  # noqa: BLE001 - cannot tell: keep the batch, visibly failed
        committed = True
    if committed:
        Batch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.FAILED, error=f"re-process failed: {exc}"[:4000]
        )
    else:
        Batch.objects.filter(pk=batch.pk).delete()
    run_log(run, f"Re-process of {batch.entity} records failed: {exc}", LogLevel.ERROR)


def _reprocess_group(
    run: Run, entity_name: str, record_ids: list[int], user, current_rules: bool
) -> ReprocessResult:
    from runs.engine.batch import process_frame, source_columns

    snapshot = plan_snapshot_build(plan=run.plan) if current_rules else run_snapshot(run)
    entity = snapshot.entity(entity_name)
    batch, records = _start(run, entity, record_ids, user)
    try:
        if not records:
            Batch.objects.filter(pk=batch.pk).delete()
            return ReprocessResult()
        try:
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
        except Exception as exc:
            _abandon(run, batch, exc)
            raise ApplicationError(f"Re-process of {entity_name} records failed: {exc}") from exc
        with transaction.atomic():
            result = _apply(run, records, outcome, batch, entity, user)
    finally:
        table_lease_release(run=run, purpose=LeasePurpose.REPROCESS)
    run_log(
        run,
        f"Re-processed {result.attempted} {entity_name} record(s) by "
        f"{getattr(user, 'username', 'the system')}: {result.fixed} fixed, "
        f"{result.still_failing} still failing.",
    )
    return result


def failed_record_reprocess(
    *,
    records: QuerySet[FailedRecord],
    user,
    current_rules: bool | None = None,
    reconcile: bool = True,
) -> ReprocessResult:
    """Send open/fixed records through transform → load → ledger again, as a new batch of
    their run under a lease on the entity's table (so a later rollback undoes it exactly).
    Records that pass close as re-processed; the rest stay open with the new message; each
    run touched is reconciled again (``reconcile``, via the after_queue_work hooks). Raises
    PermissionDeniedError, ConflictError (run running / rolling back / rolled back, table
    written by someone else, a later run wrote the table: 409) or ApplicationError.
    ``current_rules`` None: the plan's current rules, but the run's signed-off version into
    production, which only an operator may re-process into (``reprocess_rules_choose``)."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError(refusal_text("mp.work_queue"))
    failed_records_refuse_rolling_back(records, lock=False)  # at once, before any copy
    records = failed_records_standing(records)  # copies of records carried by reference
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    runs: dict[int, Run] = {}
    rows = records.filter(status__in=WORKABLE).values_list("run_id", "entity", "pk")
    for run_id, entity, pk in rows:
        groups[(run_id, entity)].append(pk)
    if not groups:
        raise ApplicationError("No open failed records match.")
    for run in Run.objects.filter(pk__in={k[0] for k in groups}).select_related(
        "plan__source", "target", "version"
    ):
        _check_run(run)
        runs[run.pk] = run
    total = ReprocessResult()
    for (run_id, entity_name), ids in groups.items():
        use_current = reprocess_rules_choose(
            run=runs[run_id], user=user, current_rules=current_rules
        )
        total.add(_reprocess_group(runs[run_id], entity_name, ids, user, use_current))
    for run in runs.values() if reconcile else ():  # no report of the state before this
        after_queue_work(run, getattr(user, "username", "") or "the system")
    audit_record(
        action=AuditAction.REPROCESS,
        actor=user,
        object_repr="failed records",
        after={"attempted": total.attempted, "fixed": total.fixed},
    )
    return total


BACKGROUND_CHUNK = 5_000


def failed_records_reprocess_background(*, record_ids: list[int], user_id: int | None) -> str:
    """Re-process records chunk by chunk (a Celery task body); records already closed are
    skipped, so running it twice is harmless. Stops (between chunks) once a run is rolling
    back or the table is written by someone else. Returns a one-line summary."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    total, stopped = ReprocessResult(), ""
    touched: set[int] = set()
    for start in range(0, len(record_ids), BACKGROUND_CHUNK):
        chunk = FailedRecord.objects.filter(
            pk__in=record_ids[start : start + BACKGROUND_CHUNK], status__in=WORKABLE
        )
        if not chunk.exists():
            continue
        touched.update(chunk.values_list("run_id", flat=True).distinct())
        try:
            total.add(failed_record_reprocess(records=chunk, user=user, reconcile=False))
        except ConflictError as exc:
            stopped = f"; stopped: {exc.message}"
            break
    for run in Run.objects.filter(pk__in=touched):  # once per run, after every chunk
        after_queue_work(run, getattr(user, "username", "") or "the system")
    return (
        f"{total.attempted} re-processed: {total.fixed} fixed, {total.still_failing} failing"
        f"{stopped}"
    )


def failed_records_reprocess_later(*, records: QuerySet[FailedRecord], user) -> int:
    """Queue a background re-process of the selection; returns how many records. Raises
    PermissionDeniedError / ApplicationError (nothing open selected)."""
    if user is not None and not user.has_perm("mp.work_queue"):
        raise PermissionDeniedError(refusal_text("mp.work_queue"))
    failed_records_refuse_rolling_back(records, lock=False)  # at once, before any copy
    records = failed_records_standing(records)  # copies of records carried by reference
    ids = list(records.filter(status__in=WORKABLE).order_by("id").values_list("id", flat=True))
    if not ids:
        raise ApplicationError("No open failed records match.")
    run_ids = records.filter(status__in=WORKABLE).values_list("run_id", flat=True).distinct()
    for run in Run.objects.filter(pk__in=run_ids).select_related("target", "plan", "version"):
        reprocess_rules_choose(run=run, user=user, current_rules=None)  # refuse now, not later
    enqueue_reprocess(ids, getattr(user, "pk", None))
    return len(ids)
