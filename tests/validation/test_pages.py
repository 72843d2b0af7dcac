"""Pages, exports and API of the validation app, per persona."""

from __future__ import annotations

import pytest

from runs.enums import RunStatus
from runs.services import run_create
from validation.audit import audit_record
from validation.enums import AuditAction

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def loaded(eager_celery, demo_plan):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_report_page_shows_accounting_checks_and_charts(loaded, client_for, viewer):
    page = client_for(viewer).get(f"/runs/{loaded.uuid}/report/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="accounting"' in html and "balanced" in html and "<svg" in html
    assert "Accounts per status match" in html and "verdict-pass" in html


def test_report_exports_csv_html_pdf(loaded, client_for, viewer):
    client = client_for(viewer)
    csv_text = client.get(f"/runs/{loaded.uuid}/report/export/csv/").content.decode()
    assert "accounting,accounts" in csv_text and "Ledger checksums reconcile" in csv_text
    html = client.get(f"/runs/{loaded.uuid}/report/export/html/").content.decode()
    assert "Key-level reconciliation" in html and ".card" in html
    pdf = client.get(f"/runs/{loaded.uuid}/report/export/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content[:4] == b"%PDF"


def test_unbalanced_accounting_is_highlighted_in_the_report(loaded, client_for, viewer):
    from validation.models import RunReport

    report = RunReport.objects.get(run=loaded)
    report.data["accounting"][0].update(balanced=False, difference=3)
    report.verdict = "fail"
    report.save()
    html = client_for(viewer).get(f"/runs/{loaded.uuid}/report/").content.decode()
    assert 'class="unbalanced"' in html and "off by 3" in html and "verdict-fail" in html


def test_rule_editor_refuses_bad_params_with_a_clear_message(demo_plan, client_for, analyst):
    client = client_for(analyst)
    page = client.post(
        f"/plans/{demo_plan.slug}/validation/rules/",
        {
            "name": "pct",
            "kind": "completeness",
            "entity": "accounts",
            "column": "Cust_Name",
            "severity": "warning",
            "enabled": "on",
            "min_pct": "150",
        },
    )
    assert "percentage: 0 to 100" in page.content.decode()
    page = client.post(
        f"/plans/{demo_plan.slug}/validation/rules/",
        {
            "name": "pct",
            "kind": "completeness",
            "entity": "accounts",
            "column": "Cust_Name",
            "severity": "warning",
            "enabled": "on",
            "min_pct": "90",
            "max": "ignored",
        },
    )
    assert page.status_code == 302
    assert demo_plan.validation_rules.get(name="pct").params == {"min_pct": 90.0}


def test_rule_editor_is_refused_to_viewers(demo_plan, client_for, viewer):
    page = client_for(viewer).post(f"/plans/{demo_plan.slug}/validation/rules/", {"name": "x"})
    assert page.status_code == 403


def test_api_rule_create_validates_params(demo_plan, client_for, analyst):
    client = client_for(analyst)
    bad = client.post(
        "/api/validation-rules/",
        {
            "plan": demo_plan.slug,
            "name": "r",
            "kind": "format",
            "entity": "accounts",
            "column": "Zip_Code",
            "params": {"pattern": "(["},
            "severity": "warning",
        },
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["field"] == "pattern"
    ok = client.post(
        "/api/validation-rules/",
        {
            "plan": demo_plan.slug,
            "name": "r",
            "kind": "format",
            "entity": "accounts",
            "column": "Zip_Code",
            "params": {"pattern": "us_zip"},
            "severity": "warning",
        },
        content_type="application/json",
    )
    assert ok.status_code == 201 and ok.json()["phase"] == "pre"


def test_prevalidation_button_stores_results(demo_plan, client_for, analyst):
    page = client_for(analyst).post(f"/plans/{demo_plan.slug}/validation/run/", follow=True)
    html = page.content.decode()
    assert "Pre-validation ran 4 rules" in html and 'id="prevalidation-results"' in html


def test_uat_and_signoff_pages_render(loaded, client_for, approver):
    client = client_for(approver)
    uat = client.get(f"/plans/{loaded.plan.slug}/uat/?run={loaded.uuid}")
    assert "Search for a customer by account number" in uat.content.decode()
    case = loaded.plan.uat_cases.first()
    page = client.post(
        f"/plans/{loaded.plan.slug}/uat/cases/{case.uuid}/result/",
        {"run": str(loaded.uuid), "outcome": "fail", "comment": ""},
        follow=True,
    )
    assert "needs a comment" in page.content.decode()
    signoff = client.get(f"/plans/{loaded.plan.slug}/signoff/")
    assert 'id="signoff-form"' in signoff.content.decode()


def _events(n: int) -> None:
    for i in range(n):
        audit_record(action=AuditAction.UPDATE, object_repr=f"thing {i}", after={"i": i})


def test_audit_page_query_count_does_not_grow(db, client_for, viewer, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(viewer)
    _events(1)
    with CaptureQueriesContext(connection) as one:
        page = client.get("/audit/?action=update")
    assert page.content.decode().count("thing ") == 1
    _events(2)
    with django_assert_num_queries(len(one.captured_queries)):
        page = client.get("/audit/?action=update")
    assert page.content.decode().count("thing ") == 3


def test_audit_csv_export_filters_by_text(db, client_for, viewer):
    _events(3)
    text = client_for(viewer).get("/audit/?q=thing 2&format=csv").content.decode()
    assert "thing 2" in text and "thing 1" not in text


def test_report_page_says_reconciling_until_the_report_exists(db, client_for, viewer):
    from mappings.models import PlanVersion
    from runs.models import Batch, Run
    from tests.factories import PlanFactory

    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(
        plan=plan, version=version, target=plan.target, mode="load", status="succeeded"
    )
    Batch.objects.create(run=run, entity="accounts", seq=1, status="done")
    page = client_for(viewer).get(f"/runs/{run.uuid}/report/").content.decode()
    assert "Reconciling…" in page and 'http-equiv="refresh"' in page
