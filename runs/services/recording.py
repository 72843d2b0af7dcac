"""Recording a batch outcome in the application database, exactly once."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from runs.enums import BatchStatus, LogLevel
from runs.models import COUNTERS, Batch, FailedRecord, LedgerEntry, Run

from .logging import run_log

CHUNK = 2_000


def _json_safe(row: dict | None) -> dict:
    return {str(k): (None if v is None else str(v)) for k, v in (row or {}).items()}


def failed_records_build(*, run: Run, batch: Batch | None, entity: str, failures) -> list:
    """FailedRecord rows (unsaved) for the engine's RowFailures."""
    return [
        FailedRecord(
            run=run,
            batch=batch,
            entity=entity,
            source_key=str(f.source_key)[:255],
            source_row=_json_safe(f.source_row),
            transformed_row=_json_safe(f.transformed_row),
            stage=f.stage,
            category=f.category,
            field=f.field or "",
            rule=f.rule or "",
            message=f.message,
            errors=[
                {
                    "field": e.field,
                    "rule": e.rule,
                    "value": None if e.value is None else str(e.value),
                    "message": e.message,
                    "category": e.category,
                }
                for e in f.errors
            ],
        )
        for f in failures
    ]


@transaction.atomic
def outcome_record(*, batch: Batch, outcome, entity, duration_ms: int) -> bool:
    """Store counts, failed records, ledger index and run counters for a worked batch, once:
    returns False (writing nothing) when the batch was already recorded. Transactional."""
    counts = {c: getattr(outcome, c) for c in COUNTERS}
    done = Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING).update(
        status=BatchStatus.DONE,
        finished_at=timezone.now(),
        duration_ms=duration_ms,
        lease_until=None,
        error="",
        **counts,
    )
    if not done:
        return False
    run = batch.run
    records = failed_records_build(
        run=run, batch=batch, entity=batch.entity, failures=outcome.failures
    )
    for start in range(0, len(records), CHUNK):
        FailedRecord.objects.bulk_create(records[start : start + CHUNK], ignore_conflicts=True)
    if outcome.inserted or outcome.updated:
        LedgerEntry.objects.get_or_create(
            batch=batch,
            defaults={
                "entity": batch.entity,
                "target_table": entity.target_table,
                "inserted": outcome.inserted,
                "updated": outcome.updated,
                "committed_at": timezone.now(),
            },
        )
    Run.objects.filter(pk=run.pk).update(**{c: F(c) + counts[c] for c in COUNTERS})
    if outcome.failed:
        run_log(
            run,
            f"Batch {batch.seq} ({batch.entity}): {outcome.loaded:,} loaded, "
            f"{outcome.failed:,} failed.",
            LogLevel.WARNING,
        )
    return True
