"""Issue 17.5: the code matches the roles table; every status change goes through the sign-off
service; edits to systems and validation rules count as authorship and void sign-offs; signing
despite failing UAT cases or a rolled-back run needs a recorded override reason."""

from __future__ import annotations

import pytest

from mappings.models import Plan
from mappings.services_systems import system_save
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.enums import RunStatus
from runs.models import Run
from runs.services import run_cancel, run_create, run_pause
from tests.factories import UserFactory
from tests.runs.conftest import _pg_system
from validation.models import AuditEvent, SignOff, UATTestCase
from validation.services import validation_rule_save
from validation.signoff import signoff_decide, uat_result_record

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def loaded(eager_celery, demo_plan):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_analyst_cannot_record_uat(loaded, analyst):
    case = UATTestCase.objects.filter(plan=loaded.plan).first()
    with pytest.raises(PermissionDeniedError):
        uat_result_record(case=case, run=loaded, user=analyst, outcome="pass")


def test_status_api_cannot_skip_the_signoff(loaded, approver, analyst, client_for):
    url = f"/api/plans/{loaded.plan.slug}/status/"
    client_for(analyst).post(url, {"status": "in_review"}, content_type="application/json")
    for user in (approver, analyst):
        response = client_for(user).post(
            url, {"status": "signed_off"}, content_type="application/json"
        )
        assert response.status_code in (400, 403), response.content
    assert Plan.objects.get(pk=loaded.plan.pk).status != "signed_off"
    assert not SignOff.objects.exists()


def test_analyst_cannot_pause_or_cancel_a_production_run(loaded, analyst, operator):
    prod = _pg_system("New CRM (prod)", "mp_other_prod", "prod", "target")
    run = Run.objects.create(
        plan=loaded.plan, version=loaded.version, target=prod, mode="load", status=RunStatus.RUNNING
    )
    with pytest.raises(PermissionDeniedError, match="Only an operator"):
        run_pause(run=run, user=analyst)
    with pytest.raises(PermissionDeniedError, match="Only an operator"):
        run_cancel(run=run, user=analyst)
    assert run_pause(run=run, user=operator).status == RunStatus.PAUSED


def test_system_and_validation_rule_edits_count_as_authorship(loaded, approver):
    both = UserFactory(username="two-hats", roles=["analyst", "approver"])
    system_save(user=both, system=loaded.plan.source, data={"description": "tuned"})
    with pytest.raises(ApplicationError, match="Four eyes"):
        signoff_decide(
            plan=loaded.plan,
            version=_new_version(loaded, both),
            run=loaded,
            user=both,
            decision="approved",
        )


def _new_version(loaded, user):
    from mappings.services import plan_version_create

    version = plan_version_create(plan=loaded.plan, user=None)
    Run.objects.filter(pk=loaded.pk).update(version=version)
    loaded.refresh_from_db()
    return version


def test_validation_rule_edit_voids_the_signoff_and_is_authorship(loaded, approver):
    signoff = signoff_decide(
        plan=loaded.plan, version=loaded.version, run=loaded, user=approver, decision="approved"
    )
    both = UserFactory(username="two-hats", roles=["analyst", "approver"])
    validation_rule_save(
        plan=loaded.plan,
        user=both,
        data={
            "name": "accounts present",
            "kind": "row_count_range",
            "entity": "accounts",
            "params": {"min": 1},
        },
    )
    signoff.refresh_from_db()
    assert signoff.voided_at is not None and "validation rule" in signoff.voided_reason
    with pytest.raises(ApplicationError, match="Four eyes"):
        signoff_decide(
            plan=loaded.plan,
            version=_new_version(loaded, both),
            run=loaded,
            user=both,
            decision="approved",
        )


def test_failing_uat_needs_an_override_reason(loaded, approver):
    other = UserFactory(username="qa-lead", roles=["approver"])
    case = UATTestCase.objects.filter(plan=loaded.plan).first()
    uat_result_record(case=case, run=loaded, user=other, outcome="fail", comment="bad totals")
    with pytest.raises(ApplicationError, match="override reason"):
        signoff_decide(
            plan=loaded.plan, version=loaded.version, run=loaded, user=approver, decision="approved"
        )
    signoff = signoff_decide(
        plan=loaded.plan,
        version=loaded.version,
        run=loaded,
        user=approver,
        decision="approved",
        reason="totals differ by design (ticket 42)",
    )
    assert signoff.reason == "totals differ by design (ticket 42)"
    event = AuditEvent.objects.filter(action="sign_off").latest("id")
    assert event.after["override"] == ["1 failing and 0 blocked UAT case(s)"]


def test_rolled_back_run_needs_an_override_reason(loaded, approver):
    Run.objects.filter(pk=loaded.pk).update(status=RunStatus.ROLLED_BACK)
    loaded.refresh_from_db()
    with pytest.raises(ApplicationError, match="rolled back"):
        signoff_decide(
            plan=loaded.plan, version=loaded.version, run=loaded, user=approver, decision="approved"
        )
