"""Failures carried by reference (issue 15): a re-run that finds a key range unchanged as a
whole records one ``runs_carriedbatch`` row for the batch instead of copying its ~3,300
failed records (``failed_batch_refer``). The records stay where they are (in the batch that
holds them) and answer to the newest live reference (runs.selectors.carried): the queue shows
them as that run's, its tally counts them, the tally's UPDATE trigger charges their changes
to it (migration 0020). A queue action on such a record first copies it into that run as a
carried copy is made today (``failed_records_materialise``), so re-processing writes through
that run's lease and ledger and its rollback undoes it; a rollback of the referring run
(``carried_batches_roll_back``) gives the records back to the reference before it, or the
run holding them. PostgreSQL only (SQLite carries nothing)."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from runs.enums import FailedRecordStatus
from runs.models import Batch, CarriedBatch, FailedRecord, Run


def carries_any() -> bool:
    """Whether any batch is carried by reference (runs.selectors.carried, imported here when
    asked: the selectors package loads numpy, which the worker's parent process must not)."""
    from runs.selectors.carried import carries_any as carries

    return carries()


_TALLY = "INSERT INTO runs_failedrecordtally (run_id, entity, stage, category, field, status, n)"
_DIMS = "g.entity, g.stage, g.category, g.field"

# One row for the batch, and the tally moved as a copy and its mark would move it: the records
# count open in the new run and carried in the run that answered for them until now (the
# newest earlier reference, else the run holding them).
_REFER = f"""
WITH ref AS (
    INSERT INTO runs_carriedbatch (run_id, batch_id, source_batch_id, source_run_id, entity,
        records, rolled_back)
    SELECT %(run)s, %(batch)s, s.id, s.run_id, s.entity,
        (SELECT count(*) FROM runs_failedrecord f WHERE f.batch_id = s.id), false
    FROM runs_batch s WHERE s.id = %(source)s
    ON CONFLICT DO NOTHING
    RETURNING source_batch_id, source_run_id
), prev AS (
    SELECT coalesce((SELECT max(c.run_id) FROM runs_carriedbatch c
        WHERE c.source_batch_id = ref.source_batch_id AND c.run_id < %(run)s
            AND NOT c.rolled_back), ref.source_run_id) AS run_id, ref.source_batch_id AS id
    FROM ref
), g AS (
    SELECT f.entity, f.stage, f.category, f.field, f.status, count(*) AS n
    FROM prev JOIN runs_failedrecord f ON f.batch_id = prev.id
    GROUP BY 1, 2, 3, 4, 5
)
{_TALLY}
SELECT %(run)s, {_DIMS}, g.status, g.n FROM g
UNION ALL SELECT prev.run_id, {_DIMS}, g.status, -g.n FROM g, prev
UNION ALL SELECT prev.run_id, {_DIMS}, %(ref_carried)s, g.n FROM g, prev
"""


def failed_batch_refer(*, run: Run, batch: Batch, source_batch: int) -> None:
    """Carry every failed record of ``source_batch`` (the batch holding them, all open) into
    ``run`` and ``batch`` by reference: one runs_carriedbatch row and the tally's deltas, no
    record written. PostgreSQL only; inside the caller's transaction; idempotent per batch."""
    with connection.cursor() as cursor:
        cursor.execute(
            _REFER,
            {
                "run": run.pk,
                "batch": batch.pk,
                "source": int(source_batch),
                "ref_carried": CarriedBatch.TALLY_CARRIED,
            },
        )


# The referred records among the ids that are still open and not yet copied into the run that
# answers for them: copied there (into its referring batch), the originals marked carried, and
# the tally put right — the mark is charged to that run by the trigger, but the original shows
# carried in the holding run (as a copied carry's original does), and no longer by reference.
_MATERIALISE = f"""
WITH owner AS (
    SELECT DISTINCT ON (c.source_batch_id) c.source_batch_id, c.run_id, c.batch_id, c.source_run_id
    FROM runs_carriedbatch c
    WHERE NOT c.rolled_back AND c.source_batch_id IN (
        SELECT f.batch_id FROM runs_failedrecord f WHERE f.id = ANY(%(ids)s))
    ORDER BY c.source_batch_id, c.run_id DESC
), picked AS (
    SELECT f.*, owner.run_id AS owner_run, owner.batch_id AS owner_batch,
        owner.source_run_id AS holder
    FROM runs_failedrecord f JOIN owner ON owner.source_batch_id = f.batch_id
    WHERE f.id = ANY(%(ids)s) AND f.status = %(open)s AND NOT EXISTS (
        SELECT 1 FROM runs_failedrecord o WHERE o.run_id = owner.run_id
            AND o.entity = f.entity AND o.source_key = f.source_key)
), copied AS (
    INSERT INTO runs_failedrecord (uuid, run_id, batch_id, entity, source_key, source_row,
        transformed_row, stage, category, field, rule, message, errors, status,
        corrected_values, ignore_reason, created_at, source_hash, rules_hash, carried_from_id)
    SELECT gen_random_uuid(), p.owner_run, p.owner_batch, p.entity, p.source_key, p.source_row,
        p.transformed_row, p.stage, p.category, p.field, p.rule, p.message, p.errors, 'open',
        '{{}}', '', now(), p.source_hash, p.rules_hash, p.id
    FROM picked p
    RETURNING 1
), marked AS (
    UPDATE runs_failedrecord f SET status = %(carried)s FROM picked p WHERE f.id = p.id
    RETURNING 1
), g AS (
    SELECT p.owner_run, p.holder, p.entity, p.stage, p.category, p.field, count(*) AS n
    FROM picked p GROUP BY 1, 2, 3, 4, 5, 6
)
{_TALLY}
SELECT g.owner_run, {_DIMS}, %(carried)s, -g.n FROM g
UNION ALL SELECT g.holder, {_DIMS}, %(carried)s, g.n FROM g
UNION ALL SELECT g.holder, {_DIMS}, %(ref_carried)s, -g.n FROM g
"""

# The records each given one stands for now: itself, or its copy in the run answering for it.
_STANDS_FOR = """
SELECT f.id, coalesce(o.id, f.id)
FROM runs_failedrecord f
LEFT JOIN LATERAL (
    SELECT c.run_id FROM runs_carriedbatch c
    WHERE c.source_batch_id = f.batch_id AND NOT c.rolled_back
    ORDER BY c.run_id DESC LIMIT 1
) owner ON true
LEFT JOIN runs_failedrecord o ON o.run_id = owner.run_id AND o.entity = f.entity
    AND o.source_key = f.source_key AND o.carried_from_id = f.id
WHERE f.id = ANY(%(ids)s)
"""


def failed_records_materialise(*, record_ids: list[int]) -> list[int]:
    """Copy the given records that are carried by reference (open, not copied yet) into the
    run answering for them, as a copied carry is made; returns the ids to act on instead of
    the given ones (a copy in place of its original; the others as they are). Inside the
    caller's transaction; idempotent; nothing to do where no batch is carried by reference."""
    ids = [int(i) for i in record_ids]
    if not ids or not carries_any():
        return ids
    params = {
        "ids": ids,
        "open": FailedRecordStatus.OPEN,
        "carried": FailedRecordStatus.CARRIED,
        "ref_carried": CarriedBatch.TALLY_CARRIED,
    }
    with connection.cursor() as cursor:
        cursor.execute(_MATERIALISE, params)
        cursor.execute(_STANDS_FOR, params)
        return sorted({new for _, new in cursor.fetchall()})


# ``run`` is rolled back: per live reference of it, the records it showed by reference (not
# copied into it) count superseded in its view; every record of the batch answers to the
# reference before it (or the holding run) again — by its status, or, for those copied into
# ``run``, as carried until the rollback re-opens them (the trigger then charges that run).
_ROLL_BACK = f"""
WITH c AS (
    SELECT id, source_batch_id, source_run_id FROM runs_carriedbatch
    WHERE run_id = %(run)s AND NOT rolled_back
), prev AS (
    SELECT c.source_batch_id, c.source_run_id AS holder, coalesce((SELECT max(p.run_id)
        FROM runs_carriedbatch p WHERE p.source_batch_id = c.source_batch_id
            AND NOT p.rolled_back AND p.run_id <> %(run)s), c.source_run_id) AS run_id
    FROM c
), rec AS (
    SELECT prev.run_id AS prev_run, prev.holder, f.entity, f.stage, f.category, f.field,
        f.status, EXISTS (SELECT 1 FROM runs_failedrecord o WHERE o.run_id = %(run)s
            AND o.entity = f.entity AND o.source_key = f.source_key) AS copied
    FROM prev JOIN runs_failedrecord f ON f.batch_id = prev.source_batch_id
), g AS (
    SELECT prev_run, holder, entity, stage, category, field, status, copied, count(*) AS n
    FROM rec GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), marked AS (
    UPDATE runs_carriedbatch SET rolled_back = true WHERE id IN (SELECT id FROM c)
    RETURNING 1
)
{_TALLY}
SELECT %(run)s, {_DIMS}, g.status, -g.n FROM g WHERE NOT g.copied
UNION ALL SELECT %(run)s, {_DIMS}, %(ref_superseded)s, g.n FROM g WHERE NOT g.copied
UNION ALL SELECT g.prev_run, {_DIMS}, %(ref_carried)s, -g.n FROM g
UNION ALL SELECT g.prev_run, {_DIMS}, g.status, g.n FROM g
UNION ALL SELECT g.holder, {_DIMS}, g.status, -g.n FROM g WHERE g.copied
UNION ALL SELECT g.holder, {_DIMS}, %(ref_carried)s, g.n FROM g WHERE g.copied
"""


def carried_batches_roll_back(*, run: Run) -> None:
    """``run`` is being rolled back: its references are marked rolled back and the tally
    moved (see _ROLL_BACK). Inside the rollback's final transaction, BEFORE the originals of
    its copies are re-opened; idempotent; nothing on SQLite."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _ROLL_BACK,
            {
                "run": run.pk,
                "ref_carried": CarriedBatch.TALLY_CARRIED,
                "ref_superseded": CarriedBatch.TALLY_SUPERSEDED,
            },
        )


def failed_records_standing(records: QuerySet[FailedRecord]) -> QuerySet[FailedRecord]:
    """The records a queue action on ``records`` acts on: each carried by reference replaced
    by its copy in the run answering for it (``failed_records_materialise``, made now, in its
    own statement); ``records`` itself where no batch is carried by reference."""
    if not carries_any():
        return records
    ids = list(records.values_list("pk", flat=True))
    return FailedRecord.objects.filter(pk__in=failed_records_materialise(record_ids=ids))
