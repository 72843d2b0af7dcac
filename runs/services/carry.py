"""Re-runs carry unchanged failures (issue 20): a row an earlier run of the same plan into the
same target failed, whose source row and rules are unchanged since, would fail the same way.
The engine asks, per batch, which of its keys are such rows (``failed_carry_lookup``); it
does not transform them, and ``recording.failed_records_carry`` copies their failed records
into the new run set-based. A key range the engine finds unchanged as a whole asks instead for
all the failed records of the earlier batch that answered for it
(``failed_carry_batch_lookup``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection

from runs.enums import FailedRecordStatus, RunStatus
from runs.models import Run

CARRY_BY_REFERENCE = True  # a range carried whole refers to its failures (runs_carriedbatch)

# Of the open failed records of the earlier runs, per key the newest with the same source
# hash and rules (the rules hash covers the target table's columns, so the load-stage checks
# decide the same way). Rows the target itself changed (a trigger, a rule) are tried again.
_LOOKUP = """
SELECT DISTINCT ON (f.source_key) f.source_key, f.id
FROM unnest(%s::text[], %s::text[]) AS u(k, h)
JOIN runs_failedrecord f ON f.source_key = u.k AND f.source_hash = u.h
WHERE f.run_id = ANY(%s) AND f.entity = %s AND f.rules_hash = %s AND f.status = %s
    AND f.category <> 'coerced_by_target'
ORDER BY f.source_key, f.run_id DESC
"""


# The failed records of one earlier batch (by its ledger ids, through the batch index): each
# with what decides whether it may be carried as it is.
_BATCH = """
SELECT f.source_key, f.id, f.status = %s AND f.rules_hash = %s AND f.source_hash <> ''
    AND f.category <> 'coerced_by_target'
FROM runs_failedrecord f
WHERE f.batch_id = (SELECT b.id FROM runs_batch b WHERE b.run_id = %s AND b.entity = %s
    AND b.seq = %s) AND f.run_id = %s AND f.entity = %s
"""


# The same for a batch carried whole by reference: the batch that holds the records (the
# earlier batch itself, or the one it referred to — references resolve when written), how
# many there are and whether every one may be carried; none when the referring batch holds
# records of its own (a referred record acted on in the queue was copied into it).
_REFER = """
WITH b AS (SELECT b.id FROM runs_batch b WHERE b.run_id = %(run)s AND b.entity = %(entity)s
        AND b.seq = %(seq)s),
    h AS (SELECT coalesce(c.source_batch_id, b.id) AS id, c.id IS NOT NULL AS referred, b.id AS own
        FROM b LEFT JOIN runs_carriedbatch c ON c.batch_id = b.id)
SELECT h.id, count(f.id), coalesce(bool_and(f.status = %(open)s AND f.rules_hash = %(rules)s
        AND f.source_hash <> '' AND f.category <> 'coerced_by_target'), true)
    AND NOT (h.referred AND EXISTS (SELECT 1 FROM runs_failedrecord o WHERE o.batch_id = h.own))
FROM h LEFT JOIN runs_failedrecord f ON f.batch_id = h.id AND f.entity = %(entity)s
GROUP BY h.id, h.referred, h.own
"""


def earlier_runs(run: Run) -> dict[str, int]:
    """Ledger id -> pk of the earlier runs of the same plan into the same target that are not
    rolled back. Read-only (one query)."""
    earlier = (
        Run.objects.filter(plan_id=run.plan_id, target_id=run.target_id, pk__lt=run.pk)
        .exclude(status=RunStatus.ROLLED_BACK)
        .values_list("uuid", "pk")
    )
    return {str(uuid): pk for uuid, pk in earlier}


def failed_carry_batch_lookup(
    *, run: Run, entity: str, earlier: dict[str, int] | None = None
) -> Callable[[str, str, str, int], dict[str, Any] | None] | None:
    """The engine's ``FailedBatchLookup`` for ``run``'s batches of ``entity``: for an earlier
    batch (its run's and its own ledger id) expected to hold ``failed`` failures, source key ->
    id of each, when there are exactly that many and every one is still open, under the same
    rules, with a source hash and not coerced by the target; else None. Read-only; None where
    the queue is not on PostgreSQL."""
    if connection.vendor != "postgresql":
        return None
    earlier = earlier_runs(run) if earlier is None else earlier
    if not earlier:
        return None
    # here, not at import: the engine's row hashing loads pyarrow (not in the worker's parent)
    from runs.engine.unchanged import FailedReference

    def lookup(
        rules_hash: str, run_id: str, batch_id: str, failed: int
    ) -> dict[str, Any] | Any | None:
        pk = earlier.get(run_id)
        name, _, seq = batch_id.rpartition(":")
        if pk is None or name != entity or not seq.isdigit():
            return None
        if failed and CARRY_BY_REFERENCE:
            params = {"run": pk, "entity": entity, "seq": int(seq)}
            with connection.cursor() as cursor:
                cursor.execute(
                    _REFER, {**params, "open": FailedRecordStatus.OPEN, "rules": rules_hash}
                )
                row = cursor.fetchone()
            if row is None or row[1] != failed or not row[2]:
                return None
            return FailedReference(batch=row[0], count=failed)
        with connection.cursor() as cursor:
            cursor.execute(
                _BATCH, (FailedRecordStatus.OPEN, rules_hash, pk, entity, int(seq), pk, entity)
            )
            rows = cursor.fetchall()
        if len(rows) != failed or not all(ok for _, _, ok in rows):
            return None
        return {key: record for key, record, _ in rows}

    return lookup


def failed_carry_lookup(
    *, run: Run, entity: str, earlier: dict[str, int] | None = None
) -> Callable[[str, list[str], list[str]], dict[str, Any]] | None:
    """The engine's ``FailedLookup`` for ``run``'s batches of ``entity``: source key -> id of
    the open failed record an earlier run (same plan and target, not rolled back) holds for
    the same source hash and rules. Read-only; None where the queue is not on PostgreSQL."""
    if connection.vendor != "postgresql":
        return None
    pks = list((earlier_runs(run) if earlier is None else earlier).values())
    if not pks:
        return None

    def lookup(rules_hash: str, keys: list[str], hashes: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(
                _LOOKUP, (keys, hashes, pks, entity, rules_hash, FailedRecordStatus.OPEN)
            )
            return dict(cursor.fetchall())

    return lookup
