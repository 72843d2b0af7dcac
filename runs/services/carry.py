"""Re-runs carry unchanged failures (issue 20): a row an earlier run of the same plan into the
same target failed, whose source row and rules are unchanged since, would fail the same way.
The engine asks, per batch, which of its keys are such rows (``failed_carry_lookup``); it
does not transform them, and ``recording.failed_records_carry`` copies their failed records
into the new run set-based."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection

from runs.enums import FailedRecordStatus, RunStatus
from runs.models import Run

# Of the open failed records of the earlier runs, per key the newest with the same source
# hash and rules. Load-stage failures depend on the target too: never carried.
_LOOKUP = """
SELECT DISTINCT ON (f.source_key) f.source_key, f.id
FROM unnest(%s::text[], %s::text[]) AS u(k, h)
JOIN runs_failedrecord f ON f.source_key = u.k AND f.source_hash = u.h
WHERE f.run_id = ANY(%s) AND f.entity = %s AND f.rules_hash = %s AND f.status = %s
    AND f.stage <> 'load'
ORDER BY f.source_key, f.run_id DESC
"""


def failed_carry_lookup(
    *, run: Run, entity: str
) -> Callable[[str, list[str], list[str]], dict[str, Any]] | None:
    """The engine's ``FailedLookup`` for ``run``'s batches of ``entity``: source key -> id of
    the open failed record an earlier run (same plan and target, not rolled back) holds for
    the same source hash and rules. Read-only; None where the queue is not on PostgreSQL."""
    if connection.vendor != "postgresql":
        return None
    earlier = list(
        Run.objects.filter(plan_id=run.plan_id, target_id=run.target_id, pk__lt=run.pk)
        .exclude(status=RunStatus.ROLLED_BACK)
        .values_list("pk", flat=True)
    )
    if not earlier:
        return None

    def lookup(rules_hash: str, keys: list[str], hashes: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(
                _LOOKUP, (keys, hashes, earlier, entity, rules_hash, FailedRecordStatus.OPEN)
            )
            return dict(cursor.fetchall())

    return lookup
