"""Post-migration reconciliation on the demo through real load runs (eager Celery)."""

from __future__ import annotations

import pytest

from runs.enums import RunStatus
from runs.models import Run
from runs.services import run_create
from tests.support import pg
from validation.models import RunReport, ValidationResult
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _load(plan) -> Run:
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _checks(run) -> dict[str, ValidationResult]:
    return {r.rule.kind + ":" + r.rule.entity: r
            for r in ValidationResult.objects.filter(run=run).select_related("rule")}


def test_load_run_report_passes_through_the_mapping(eager_celery, demo_plan):
    run = _load(demo_plan)
    report = RunReport.objects.get(run=run)
    checks = _checks(run)
    assert {k: r.status for k, r in checks.items() if r.rule.phase == "post"} == {
        "row_count_match:accounts": "passed",
        "category_count_match:accounts": "passed",
        "sum_match:orders": "passed",
        "referential_integrity:contacts": "passed",
        "sample_compare:accounts": "passed",
        "checksum:accounts": "passed",
    }
    assert report.verdict == "pass"
    categories = checks["category_count_match:accounts"].details["categories"]
    assert {c["category"] for c in categories} <= {"Active", "Inactive"}
    assert all(a["balanced"] for a in report.data["accounting"])
    assert all(d["clean"] for d in report.data["key_diffs"].values())


def test_reconciliation_finds_changed_deleted_and_added_rows(eager_celery, demo_plan,
                                                             demo_target_db):
    run = _load(demo_plan)
    ids = [r[0] for r in pg.query(demo_target_db, "SELECT id FROM accounts ORDER BY id")]
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Tampered' WHERE id = %s", (ids[3],))
    pg.query(demo_target_db, "DELETE FROM contacts WHERE account_id = %s", (ids[10],))
    pg.query(demo_target_db, "DELETE FROM accounts WHERE id = %s", (ids[10],))
    pg.query(demo_target_db, "INSERT INTO accounts (id, account_number, name, account_status) "
             "VALUES (%s, 'X-1', 'Intruder', 'Active')", (ids[-1] + 5,))
    report = run_report_build(run=run)
    diff = report.data["key_diffs"]["accounts"]
    assert (diff["changed_keys"], diff["missing_keys"], diff["extra_keys"]) == (
        [str(ids[3])], [str(ids[10])], [str(ids[-1] + 5)])
    assert report.verdict == "fail"
    assert _checks(run)["checksum:accounts"].status == "failed"
    assert _checks(run)["row_count_match:accounts"].observed == f"{len(ids) - 1:,}"
