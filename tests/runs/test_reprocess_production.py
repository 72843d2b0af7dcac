"""Issue 17.4: re-processing into production uses only signed-off rules, and only an operator
may do it (an analyst's rule edit after sign-off never reaches production this way)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mappings.models import FieldMapping, RuleStep, System
from mappings.services import plan_version_create
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.models import FailedRecord
from runs.services import failed_record_correct, failed_record_reprocess, run_create
from tests.support import pg
from validation.models import SignOff

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_reprocess_into_prod_uses_the_signed_off_rules_and_needs_an_operator(
    eager_celery, demo_plan, demo_target_db, analyst, operator, approver
):
    System.objects.filter(pk=demo_plan.target_id).update(environment="prod")
    version = plan_version_create(plan=demo_plan, user=None, note="for sign-off")
    SignOff.objects.create(plan=demo_plan, version=version, approver=approver, decision="approved")
    run = run_create(plan=demo_plan, user=operator, mode="load")
    run.refresh_from_db()
    assert run.version_id == version.pk and run.status == "succeeded", run.error
    records = FailedRecord.objects.filter(run=run, entity="accounts", field="email")
    record = next(r for r in records if len(r.errors) == 1)
    with pytest.raises(PermissionDeniedError, match="only an operator may correct"):
        failed_record_correct(record=record, user=analyst, values={"Email_Address": "x@ex.com"})
    failed_record_correct(record=record, user=operator, values={"Email_Address": "fix@ex.com"})

    # After sign-off an analyst adds a rule: the sign-off is void, the rules are unsigned.
    email = FieldMapping.objects.get(
        entity__plan=demo_plan, entity__name="accounts", target_column="email"
    )
    RuleStep.objects.create(field=email, position=99, rule="upper")
    assert not SignOff.objects.filter(plan=demo_plan, voided_at__isnull=True).exists()

    one = FailedRecord.objects.filter(pk=record.pk)
    with pytest.raises(PermissionDeniedError, match="only an operator"):
        failed_record_reprocess(records=one, user=analyst)
    with pytest.raises(PermissionDeniedError, match="only an operator"):
        failed_record_reprocess(records=one, user=analyst, current_rules=False)
    with pytest.raises(ApplicationError, match="current rules are not signed off"):
        failed_record_reprocess(records=one, user=operator, current_rules=True)
    result = failed_record_reprocess(records=one, user=operator)
    assert (result.fixed, result.still_failing) == (1, 0)
    assert pg.query(
        demo_target_db, "SELECT email FROM accounts WHERE account_number = %s", (record.source_key,)
    ) == [("fix@ex.com",)]  # not upper-cased


def test_the_queue_page_and_api_refuse_an_analyst_on_prod(
    eager_celery, demo_plan, analyst, operator, approver, client_for
):
    System.objects.filter(pk=demo_plan.target_id).update(environment="prod")
    version = plan_version_create(plan=demo_plan, user=None)
    SignOff.objects.create(plan=demo_plan, version=version, approver=approver, decision="approved")
    run = run_create(plan=demo_plan, user=operator, mode="load")
    record = FailedRecord.objects.filter(run=run, status="open").first()
    client = client_for(analyst)
    api = client.post(
        "/api/failed-records/reprocess/",
        {"ids": [str(record.uuid)]},
        content_type="application/json",
    )
    assert api.status_code == 403 and "only an operator" in api.json()["detail"]
    # REVIEW9 J3-2: nor may an analyst close (ignore) or correct a production record
    ignore = client.post(
        "/api/failed-records/ignore/",
        {"ids": [str(record.uuid)], "reason": "analyst ignores prod record"},
        content_type="application/json",
    )
    assert ignore.status_code == 403 and "only an operator may ignore" in ignore.json()["detail"]
    source_column = next(iter(record.source_row))
    fix = client.patch(
        f"/api/failed-records/{record.uuid}/",
        {"corrected_values": {source_column: "x"}},
        content_type="application/json",
    )
    assert fix.status_code == 403 and "only an operator may correct" in fix.json()["detail"]
    record.refresh_from_db()
    # ... nor through the pages, with the same words
    refused = f"“{run.target.name}” is a production target: only an operator may"
    ids = {"ids": [str(record.uuid)], "reason": "analyst closes a prod failure"}
    page = client.post(reverse("runs:queue_ignore"), ids)
    assert page.status_code == 403
    assert f"{refused} ignore its failed records." in page.content.decode()
    page = client.post(
        reverse("runs:failed_record_correct", args=[record.uuid]), {f"v:{source_column}": "x"}
    )
    assert page.status_code == 403
    assert f"{refused} correct its failed records." in page.content.decode()
    record.refresh_from_db()
    assert (record.status, record.corrected_values, record.ignore_reason) == ("open", {}, "")
    done = client_for(operator).post(
        "/api/failed-records/ignore/", ids, content_type="application/json"
    )
    assert done.status_code == 200 and done.json() == {"ignored": 1}
