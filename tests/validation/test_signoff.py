"""Four-eyes sign-off bound to a run and its frozen report; edits void it; the audit trail."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from mappings.models import FieldMapping, PlanVersion
from mappings.services import plan_version_create
from migration_planner.lib.errors import ApplicationError
from runs.enums import RunStatus
from runs.services import run_create
from tests.factories import UserFactory
from tests.runs.conftest import _pg_system
from validation.models import AuditEvent, SignOff, UATTestCase
from validation.signoff import signoff_decide, uat_coverage, uat_result_record

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def loaded(eager_celery, demo_plan):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _edit_field(plan, user, notes="edited", default=None) -> FieldMapping:
    field = FieldMapping.objects.filter(entity__plan=plan, target_column="description").first()
    field.notes = notes
    field.default_value = default
    field._history_user = user
    field.save()
    return field


def test_approver_who_edited_the_plan_cannot_sign_it(loaded, approver):
    _edit_field(loaded.plan, approver, default="(none)")
    version = plan_version_create(plan=loaded.plan, user=None)
    assert version.number == 2
    run = run_create(plan=loaded.plan, user=None, mode="load")
    with pytest.raises(ApplicationError, match="Four eyes"):
        signoff_decide(
            plan=loaded.plan, version=version, run=run, user=approver, decision="approved"
        )
    assert not SignOff.objects.exists()


def test_version_creator_cannot_sign_it(loaded, approver):
    version = _frozen_by(loaded, approver)
    with pytest.raises(ApplicationError, match="Four eyes"):
        signoff_decide(
            plan=loaded.plan, version=version, run=loaded, user=approver, decision="approved"
        )


def _frozen_by(run, user) -> PlanVersion:
    version = PlanVersion.objects.get(pk=run.version_id)
    PlanVersion.objects.filter(pk=version.pk).update(created_by=user)
    version.refresh_from_db()
    return version


def test_signoff_opens_the_production_gate_and_an_edit_voids_it(loaded, approver, operator):
    plan = loaded.plan
    prod = _pg_system("New CRM (prod)", loaded.target.database, "prod", "target")
    with pytest.raises(ApplicationError, match="must be signed off"):
        run_create(plan=plan, user=operator, target=prod, mode="load")
    signoff = signoff_decide(
        plan=plan, version=loaded.version, run=loaded, user=approver, decision="approved"
    )
    plan.refresh_from_db()
    assert (plan.status, signoff.is_valid) == ("signed_off", True)
    assert signoff.report_snapshot["verdict"] == "pass"
    assert signoff.report_snapshot["report"]["accounting"][0]["entity"] == "accounts"
    run = run_create(plan=plan, user=operator, target=prod, mode="load")
    assert run.version_id == loaded.version_id
    _edit_field(plan, User.objects.get(username="plan-owner"))
    signoff.refresh_from_db()
    plan.refresh_from_db()
    assert signoff.voided_at is not None and "edited by plan-owner" in signoff.voided_reason
    assert plan.status == "draft"
    with pytest.raises(ApplicationError, match="must be signed off"):
        run_create(plan=plan, user=operator, target=prod, mode="load")


def test_rejection_needs_a_reason(loaded, approver):
    with pytest.raises(ApplicationError, match="reason"):
        signoff_decide(
            plan=loaded.plan, version=loaded.version, run=loaded, user=approver, decision="rejected"
        )
    signoff = signoff_decide(
        plan=loaded.plan,
        version=loaded.version,
        run=loaded,
        user=approver,
        decision="rejected",
        reason="UAT case 2 fails",
    )
    assert not signoff.is_valid


def test_uat_results_and_coverage(loaded, approver):
    cases = list(UATTestCase.objects.filter(plan=loaded.plan))
    uat_result_record(case=cases[0], run=loaded, user=approver, outcome="pass")
    with pytest.raises(ApplicationError, match="needs a comment"):
        uat_result_record(case=cases[1], run=loaded, user=approver, outcome="fail")
    uat_result_record(
        case=cases[1], run=loaded, user=approver, outcome="blocked", comment="no access to the CRM"
    )
    assert uat_coverage(plan=loaded.plan, run=loaded) == {
        "cases": 3,
        "with_result": 2,
        "passing": 1,
        "failing": 0,
        "blocked": 1,
        "untested": 1,
    }


def test_audit_log_holds_edit_run_signoff_and_login(loaded, approver, client):
    analyst = UserFactory(username="edith", roles=["analyst"])
    field = _edit_field(loaded.plan, analyst, notes="audited")
    signoff_decide(
        plan=loaded.plan, version=loaded.version, run=loaded, user=approver, decision="approved"
    )
    client.post("/accounts/login/", {"username": "abe", "password": "wrong"})
    edit = AuditEvent.objects.get(action="update", object_id=str(field.uuid))
    assert (edit.actor_name, edit.after) == ("edith", {"notes": "audited"})
    assert edit.before["notes"] != "audited"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"run_start", "sign_off", "update", "login_failed", "version"} <= actions
