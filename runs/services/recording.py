"""Recording a batch outcome in the application database, exactly once."""

from __future__ import annotations

import psycopg2.errors
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from runs.enums import BatchStatus, FailedRecordStatus, LogLevel
from runs.models import COUNTERS, Batch, FailedRecord, LedgerEntry, Run

from .failed_copy import (
    _COPY_COLUMNS,
    COPY_CHUNK,
    FAILURE_FIELDS,
    _copy_columns,
    _error_values,
    _json_safe,
    _Pieces,
)
from .logging import run_log

CHUNK = 2_000


def _failure_values(f) -> dict:
    """The FailedRecord field values of one engine RowFailure."""
    return {
        "source_key": str(f.source_key)[:255],
        "source_row": _json_safe(f.source_row),
        "transformed_row": _json_safe(f.transformed_row),
        "stage": f.stage,
        "category": f.category,
        "field": f.field or "",
        "rule": f.rule or "",
        "message": f.message,
        "errors": _error_values(f),
    }


def failed_records_build(
    *, run: Run, batch: Batch | None, entity: str, failures, rules_hash: str = ""
) -> list:
    """FailedRecord rows (unsaved) for the engine's RowFailures."""
    return [
        FailedRecord(
            run=run,
            batch=batch,
            entity=entity,
            source_hash=getattr(f, "source_hash", "") or "",
            rules_hash=rules_hash,
            **_failure_values(f),
        )
        for f in failures
    ]


def failed_records_insert(
    *, run: Run, batch: Batch | None, entity: str, failures, rules_hash: str = ""
) -> None:
    """Insert the failed records of a batch: on PostgreSQL one COPY built column-wise (orjson
    + Arrow's kernels, text format; 8,000 records in ~0.3 s instead of ~1 s) COPY_CHUNK records at a
    time as the server reads it (memory bounded by a piece, not the batch), bulk_create
    elsewhere.
    Runs inside the caller's transaction; a source key already recorded for the run is kept."""
    if not failures:
        return
    if connection.vendor != "postgresql":
        records = failed_records_build(
            run=run, batch=batch, entity=entity, failures=failures, rules_hash=rules_hash
        )
        for start in range(0, len(records), CHUNK):
            FailedRecord.objects.bulk_create(records[start : start + CHUNK], ignore_conflicts=True)
        return
    # COPY's text format (NULL is \N, an empty field is empty text): JSON's double quotes go
    # as they are, where CSV doubled each one and the server undid it
    from runs.engine.connectors.postgres import text_copy_bytes  # pyarrow: pool child only
    from runs.engine.failure_block import segments

    created = timezone.now().isoformat()

    # chunks within runs of one block's failures (written column-wise) and of the others
    chunks = [
        part[start : start + COPY_CHUNK]
        for part in segments(failures)
        for start in range(0, len(part), COPY_CHUNK)
    ]

    def data() -> _Pieces:  # the lines, COPY_CHUNK records at a time, as COPY reads them
        return _Pieces(
            text_copy_bytes(
                *_copy_columns(
                    run=run,
                    batch=batch,
                    entity=entity,
                    failures=chunk,
                    rules_hash=rules_hash,
                    created=created,
                )
            )
            for chunk in chunks
        )

    table, columns = FailedRecord._meta.db_table, ", ".join(_COPY_COLUMNS)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT text)", data()
            )
        return
    except psycopg2.errors.UniqueViolation:
        pass  # a source key failing twice in one run (ambiguous composite keys): slow path
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE mp_failed ON COMMIT DROP AS SELECT {columns} "
            f"FROM {table} WITH NO DATA"
        )
        cursor.cursor.copy_expert(
            f"COPY mp_failed ({columns}) FROM STDIN WITH (FORMAT text)", data()
        )
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM mp_failed "
            "ON CONFLICT DO NOTHING"
        )
        cursor.execute("DROP TABLE mp_failed")


# The copy of an earlier run's failed record into a new run and batch, as it was (open again,
# no correction, no handler), pointing at the record it came from; in the same statement the
# originals still open become "carried". Both reach the originals by primary key: the status
# test is kept out of the index's reach (``|| ''``), else a planner that believes few records
# are open scans every open record of every run through (run, status) for each batch.
_CARRY = """
WITH copied AS (
    INSERT INTO runs_failedrecord (uuid, run_id, batch_id, entity, source_key, source_row,
        transformed_row, stage, category, field, rule, message, errors, status,
        corrected_values, ignore_reason, created_at, source_hash, rules_hash, carried_from_id)
    SELECT gen_random_uuid(), %(run)s, %(batch)s, f.entity, f.source_key, f.source_row,
        f.transformed_row, f.stage, f.category, f.field, f.rule, f.message, f.errors, 'open',
        '{}', '', now(), f.source_hash, f.rules_hash, f.id
    FROM runs_failedrecord f WHERE f.id = ANY(%(ids)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
), marked AS (
    UPDATE runs_failedrecord f SET status = %(carried)s
    WHERE f.id = ANY(%(ids)s) AND f.status || '' = %(open)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM copied), (SELECT count(*) FROM marked)
"""


def failed_records_carry(*, run: Run, batch: Batch, record_ids: list[int]) -> int:
    """Copy earlier runs' failed records (unchanged failures a re-run did not transform again)
    into ``run`` and ``batch``, set-based (INSERT … SELECT), and mark the originals
    ``carried`` so the queue shows each key once (on PostgreSQL both in one statement).
    Inside the caller's transaction; a key already recorded for the run is kept. Returns the
    number of records copied."""
    if not record_ids:
        return 0
    ids = [int(i) for i in record_ids]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _CARRY,
                {
                    "run": run.pk,
                    "batch": batch.pk,
                    "ids": ids,
                    "carried": FailedRecordStatus.CARRIED,
                    "open": FailedRecordStatus.OPEN,
                },
            )
            return int(cursor.fetchone()[0])
    copies = [
        FailedRecord(
            run=run,
            batch=batch,
            carried_from=f,
            **{
                name: getattr(f, name)
                for name in (*FAILURE_FIELDS, "entity", "source_hash", "rules_hash")
            },
        )
        for f in FailedRecord.objects.filter(pk__in=ids)
    ]
    copied = len(FailedRecord.objects.bulk_create(copies, ignore_conflicts=True))
    FailedRecord.objects.filter(pk__in=ids, status=FailedRecordStatus.OPEN).update(
        status=FailedRecordStatus.CARRIED
    )
    return copied


@transaction.atomic
def outcome_record(*, batch: Batch, outcome, entity, duration_ms: int) -> bool:
    """Store counts, failed records, ledger index and run counters for a worked batch, once:
    returns False (writing nothing) when the batch was already recorded. Transactional."""
    counts = {c: getattr(outcome, c) for c in COUNTERS}
    # Only the current claim records (a late original whose batch the supervisor handed to
    # another attempt finds a different attempt number and writes nothing).
    done = Batch.objects.filter(
        pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts
    ).update(
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
    failed_records_insert(
        run=run,
        batch=batch,
        entity=batch.entity,
        failures=outcome.failures,
        rules_hash=getattr(outcome, "rules_hash", ""),
    )
    carried = getattr(outcome, "carried_failures", None)
    if carried:
        failed_records_carry(run=run, batch=batch, record_ids=list(carried.values()))
    referred = getattr(outcome, "carried_reference", None)
    if referred:
        from .carry_refs import failed_batch_refer

        failed_batch_refer(run=run, batch=batch, source_batch=referred["batch"])
    if outcome.inserted or outcome.updated:  # one INSERT ... ON CONFLICT DO NOTHING (the
        # batch is unique): get_or_create took a SELECT and a savepoint around its INSERT
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    batch=batch,
                    entity=batch.entity,
                    target_table=entity.target_table,
                    inserted=outcome.inserted,
                    updated=outcome.updated,
                    committed_at=timezone.now(),
                )
            ],
            ignore_conflicts=True,
        )
    Run.objects.filter(pk=run.pk).update(**{c: F(c) + counts[c] for c in COUNTERS})
    skipped = getattr(outcome, "skipped", 0)
    if skipped:
        run_log(
            run,
            f"Batch {batch.seq} ({batch.entity}): {skipped:,} rows unchanged since an earlier "
            "run (same source row and rules, target row as written): not transformed, not "
            "rewritten.",
        )
    if getattr(outcome, "unchanged", 0) > skipped:
        run_log(
            run,
            f"Batch {batch.seq} ({batch.entity}): {outcome.unchanged - skipped:,} rows already "
            "identical in the target (not rewritten).",
        )
    if outcome.failed:
        again = len(carried or ())
        same = (
            f" ({again:,} of them failed before with the same source row and rules: not "
            "transformed again, their failed records carried into this run)"
            if again
            else ""
        )
        run_log(
            run,
            f"Batch {batch.seq} ({batch.entity}): {outcome.loaded:,} loaded, "
            f"{outcome.failed:,} failed{same}.",
            LogLevel.WARNING,
        )
    return True
