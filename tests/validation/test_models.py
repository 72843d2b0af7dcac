"""Validation-side model invariants."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from mappings.models import PlanVersion
from runs.models import Run
from tests.factories import PlanFactory
from validation.models import SignOff, UATResult, UATTestCase

pytestmark = pytest.mark.django_db


def test_signoff_rejection_needs_reason(approver):
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    with pytest.raises(IntegrityError), transaction.atomic():
        SignOff.objects.create(plan=plan, version=version, approver=approver, decision="rejected")
    signoff = SignOff.objects.create(
        plan=plan, version=version, approver=approver, decision="approved"
    )
    assert signoff.is_valid


def test_uat_failure_needs_comment(approver):
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    case = UATTestCase.objects.create(
        plan=plan, title="Find a customer", steps="s", expected_result="e"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        UATResult.objects.create(case=case, run=run, tester=approver, outcome="fail")
    UATResult.objects.create(case=case, run=run, tester=approver, outcome="pass")
