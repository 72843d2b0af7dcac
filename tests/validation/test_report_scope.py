"""The report's scope and names (issue 14): rows the run did not write are "present", not a
failure; keys are shown as business key + surrogate id; a changed row names the column with
its intended and stored value; the report is computed again on demand and after queue work,
and says when and from which state."""

from __future__ import annotations

import pytest

from runs.enums import FailedRecordStatus, RunStatus
from runs.models import FailedRecord, Run
from runs.services import failed_record_reprocess, run_create
from tests.support import pg
from validation.models import RunReport

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _load(plan) -> Run:
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_rows_present_before_the_run_do_not_fail_it_and_are_named(
    eager_celery, demo_plan, demo_target_db
):
    pg.query(
        demo_target_db,
        "INSERT INTO accounts (id, account_number, name, account_status) "
        "VALUES (900000001, 'PRE-1', 'Already here', 'Active')",
    )
    run = _load(demo_plan)
    report = RunReport.objects.get(run=run)
    diff = report.data["key_diffs"]["accounts"]
    assert (diff["missing"], diff["changed"], diff["clean"]) == (0, 0, True)
    assert diff["present_named"] == [{"key": "PRE-1", "id": "900000001"}]
    assert report.verdict != "fail"
    assert report.data["computed"]["reason"] == "after the run"
    assert report.data["computed"]["state"]["loaded"] == run.loaded


def test_a_changed_row_is_named_by_business_key_column_intended_and_stored(
    eager_celery, demo_plan, demo_target_db
):
    from validation.services import run_report_build

    run = _load(demo_plan)
    row = pg.query(demo_target_db, "SELECT id, account_number, name FROM accounts ORDER BY id")[3]
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Tampered' WHERE id = %s", (row[0],))
    report = run_report_build(run=run, reason="test")
    diff = report.data["key_diffs"]["accounts"]
    source_key = diff["changed_named"][0]["key"]
    assert diff["changed_named"] == [{"key": source_key, "id": str(row[0])}]
    assert source_key  # the legacy customer id, not the surrogate
    assert diff["changed_fields"] == [
        {
            "business_key": source_key,
            "key": str(row[0]),
            "column": "name",
            "intended": row[2],
            "stored": "Tampered",
        }
    ]
    assert report.verdict == "fail"


def test_reprocessing_failed_records_reconciles_the_run_again(eager_celery, demo_plan, analyst):
    run = _load(demo_plan)
    before = RunReport.objects.get(run=run).data["computed"]
    open_records = FailedRecord.objects.filter(run=run, status=FailedRecordStatus.OPEN)
    assert open_records.exists()
    ids = list(open_records.values_list("pk", flat=True)[:5])
    failed_record_reprocess(records=FailedRecord.objects.filter(pk__in=ids), user=analyst)
    after = RunReport.objects.get(run=run).data["computed"]
    assert after["at"] > before["at"]
    assert after["reason"] == f"after re-processing failed records by {analyst.username}"


def test_reconcile_again_on_demand_page_and_api_by_role(
    eager_celery, demo_plan, client_for, analyst, viewer
):
    run = _load(demo_plan)
    page = client_for(analyst).get(f"/runs/{run.uuid}/report/").content.decode()
    assert 'id="reconcile-again"' in page and 'id="report-computed"' in page
    assert (
        'id="reconcile-again"'
        not in client_for(viewer).get(f"/runs/{run.uuid}/report/").content.decode()
    )
    response = client_for(analyst).post(f"/runs/{run.uuid}/report/reconcile/")
    assert response.status_code == 302
    assert RunReport.objects.get(run=run).data["computed"]["reason"] == (
        f"on demand by {analyst.username}"
    )
    assert client_for(viewer).post(f"/runs/{run.uuid}/report/reconcile/").status_code == 403
    api = client_for(analyst).post(f"/api/run-reports/{run.uuid}/reconcile/")
    assert api.status_code == 202, api.content
    denied = client_for(viewer).post(f"/api/run-reports/{run.uuid}/reconcile/")
    assert denied.status_code == 403


def test_the_report_says_when_the_run_changed_since_it_was_computed(
    eager_celery, demo_plan, client_for, viewer
):
    run = _load(demo_plan)
    Run.objects.filter(pk=run.pk).update(loaded=run.loaded + 7)
    page = client_for(viewer).get(f"/runs/{run.uuid}/report/").content.decode()
    assert 'id="report-stale"' in page


def test_the_demo_orders_keep_their_three_letter_currency(eager_celery, demo_plan, demo_target_db):
    """Issue 14's first finding: orders.currency is char(3); 'USD' was stored as 'U' and the
    report still said Pass. Every stored currency now has its three letters and no order was
    coerced by the target."""
    run = _load(demo_plan)
    values = {r[0] for r in pg.query(demo_target_db, "SELECT DISTINCT currency FROM orders")}
    assert {"USD", "EUR", "GBP", "CAD"} <= values  # (the source's invalid '$' loads as '$  ')
    assert not values & {"U", "E", "G", "C"}
    coerced = FailedRecord.objects.filter(run=run, category="coerced_by_target").count()
    assert coerced == 0
    assert RunReport.objects.get(run=run).data["key_diffs"]["orders"]["clean"]
