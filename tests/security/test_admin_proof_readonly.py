"""REVIEW9 J3-3: the Django admin may view the proof (sign-offs, audit events, runs, batches,
ledger, failed records, rollbacks, reports) but never add, change or delete it by hand."""

from __future__ import annotations

import pytest

from mappings.models import PlanVersion
from migration_planner.audit.models import AuditEvent
from tests.factories import PlanFactory
from validation.models import SignOff

pytestmark = pytest.mark.django_db

# The others (sign-offs, audit events, runs, ledger...): tests/web/test_access.py.
PROOF = ("validation/runreport", "mappings/planversion")


@pytest.mark.parametrize("model", PROOF)
def test_the_admin_views_the_proof_but_cannot_add_it(client_for, admin_user, model):
    client = client_for(admin_user)
    changelist = client.get(f"/admin/{model}/")
    assert changelist.status_code == 200
    assert f'href="/admin/{model}/add/"' not in changelist.content.decode()
    assert client.get(f"/admin/{model}/add/").status_code == 403
    assert client.post(f"/admin/{model}/add/", {}).status_code == 403


def test_the_admin_cannot_forge_or_change_a_signoff_or_an_audit_event(
    client_for, admin_user, approver
):
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    signoff = SignOff.objects.create(
        plan=plan, version=version, approver=approver, decision="rejected", reason="no"
    )
    event = AuditEvent.objects.create(action="create", actor=approver, object_repr="real")
    client = client_for(admin_user)
    url = f"/admin/validation/signoff/{signoff.pk}/change/"
    assert client.get(url).status_code == 200  # viewable, read-only
    forged = {
        "plan": plan.pk,
        "version": version.pk,
        "approver": approver.pk,
        "decision": "approved",
        "reason": "FORGED",
    }
    assert client.post(url, forged).status_code == 403
    assert (
        client.post(f"/admin/validation/signoff/{signoff.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    signoff.refresh_from_db()
    assert (signoff.decision, signoff.reason) == ("rejected", "no")
    url = f"/admin/audit/auditevent/{event.pk}/change/"
    assert client.post(url, {"action": "delete", "object_repr": "FORGED"}).status_code == 403
    event.refresh_from_db()
    assert event.object_repr == "real"
    assert (
        SignOff.objects.count() == 1
        and AuditEvent.objects.filter(object_repr="FORGED").count() == 0
    )
