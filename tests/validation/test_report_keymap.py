"""The report's sample resolves its keys through the key map without moving the run's pending
key-map pairs in (that move was the largest statement of a 10 M-row report: 48 s), and still
compares each sampled row with the target row the run wrote for it."""

from __future__ import annotations

import pytest

from runs.enums import RunStatus
from runs.services import run_create
from tests.support import pg
from tests.support.validation_rules import validation_rule
from validation.models import ValidationResult
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _pending(db: str) -> tuple[int, int]:
    """(batches whose key-map pairs are pending, key-map rows) of the accounts."""
    return pg.query(
        db,
        "SELECT (SELECT count(*) FROM mp_ledger.batch WHERE entity = 'accounts' "
        "AND keymap_source IS NOT NULL), (SELECT count(*) FROM mp_ledger.keymap "
        "WHERE entity = 'accounts')",
    )[0]


def test_report_samples_through_pending_key_map_pairs_and_leaves_them_pending(
    eager_celery, demo_plan, demo_target_db
):
    # the accounts alone (as the bench): no child entity looks their key map up during the run
    demo_plan.entities.exclude(name="accounts").delete()
    demo_plan.validation_rules.filter(phase="post").exclude(entity="accounts").delete()
    demo_plan.batch_size = 50  # several batches, all pending
    demo_plan.save()
    validation_rule(demo_plan, "every row", "sample_compare", "accounts", "", "warning", pct=100.0)
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    batches, _ = _pending(demo_target_db)
    assert batches > 2
    assert _pending(demo_target_db) == (batches, 0)

    report = run_report_build(run=run)
    every = ValidationResult.objects.get(run=run, rule__name="every row")
    assert (report.verdict, every.status, every.details["sampled"]) == (
        "pass",
        "passed",
        run.loaded,
    )
    assert _pending(demo_target_db) == (batches, 0)  # nothing moved in

    # a changed cell in the target: the sample names the row, by id and business key
    key, number = pg.query(
        demo_target_db, "SELECT id::text, account_number FROM accounts ORDER BY id DESC LIMIT 1"
    )[0]
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Tampered' WHERE id = %s::bigint", (key,))
    run_report_build(run=run)
    every = ValidationResult.objects.get(run=run, rule__name="every row")
    assert (every.status, every.observed) == ("warning", "1 rows differ (1 fields)")
    (found,) = every.details["differences"]
    assert (found["key"], found["field"], found["actual"]) == (key, "name", "Tampered")
    assert found["business_key"] == number
