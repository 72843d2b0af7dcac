"""Issue 20: the report got faster (column-wise regex, no failure records built, Arrow rows,
key ranges shared out to threads), but what it proves against stays the independent
re-derivation of the source through the rules, never the ledger's own hashes: with the ledger
checksum rule off, a cell changed in the target still fails the report."""

from __future__ import annotations

import pytest

from runs.enums import RunStatus
from runs.services import run_create
from tests.support import pg
from tests.support.validation_rules import validation_rule as _rule
from validation.models import ValidationResult
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _statuses(run) -> dict[str, str]:
    return {
        r.rule.name: r.status
        for r in ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    }


def test_tampered_cell_fails_the_rederivation_checks_on_their_own(
    eager_celery, demo_plan, demo_target_db
):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    demo_plan.validation_rules.filter(phase="post").update(enabled=False)
    _rule(demo_plan, "every row", "sample_compare", "accounts", pct=100.0)
    _rule(demo_plan, "statuses", "category_count_match", "accounts", "account_status")
    assert run_report_build(run=run).verdict == "pass"
    assert set(_statuses(run).values()) == {"passed"}

    # the ZIP (checked by regex_validate in the run) and the status of one row changed...
    key = pg.query(demo_target_db, "SELECT min(id)::text FROM accounts")[0][0]
    pg.query(
        demo_target_db,
        "UPDATE accounts SET billing_postal_code = '00000', account_status = CASE "
        "account_status WHEN 'Active' THEN 'Inactive' ELSE 'Active' END WHERE id = %s::bigint",
        (key,),
    )
    report = run_report_build(run=run)
    statuses = _statuses(run)
    # the re-derivation alone (no ledger hash involved) finds the row and the counts changed
    assert (statuses["every row"], statuses["statuses"]) == ("failed", "failed")
    assert report.verdict == "fail"
    found = ValidationResult.objects.get(run=run, rule__name="every row").details["differences"]
    assert {d["field"] for d in found} >= {"billing_postal_code", "account_status"}
