"""Versions (create, diff, revert), history, and the sign-off → draft rule."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.urls import reverse

from mappings.services import plan_version_create
from mappings.services_edit import plan_status_set, step_add
from mappings.services_versions import plan_version_revert, snapshot_diff
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db


def test_any_edit_after_sign_off_returns_the_plan_to_draft(demo_plan, analyst):
    demo_plan.status = "signed_off"
    demo_plan.save()
    step_add(
        field=demo_plan.entities.get(name="accounts").fields.get(target_column="name"),
        user=analyst,
        rule="upper",
    )
    demo_plan.refresh_from_db()
    assert demo_plan.status == "draft"


def test_status_changes_never_sign_off(demo_plan, analyst, approver):
    """Signed off only through the sign-off service (approver, four eyes, a SignOff row)."""
    plan_status_set(plan=demo_plan, user=analyst, status="in_review")
    with pytest.raises(ApplicationError, match="only through the sign-off"):
        plan_status_set(plan=demo_plan, user=analyst, status="signed_off")
    with pytest.raises(PermissionDeniedError):
        plan_status_set(plan=demo_plan, user=approver, status="signed_off")
    demo_plan.refresh_from_db()
    assert demo_plan.status == "in_review"


def test_viewer_cannot_edit_through_services(demo_plan, viewer):
    field = demo_plan.entities.get(name="accounts").fields.get(target_column="name")
    with pytest.raises(PermissionDeniedError):
        step_add(field=field, user=viewer, rule="upper")


def test_diff_and_revert_between_versions(demo_plan, analyst):
    v1 = plan_version_create(plan=demo_plan, user=analyst)
    field = demo_plan.entities.get(name="accounts").fields.get(target_column="name")
    step_add(field=field, user=analyst, rule="upper")
    v2 = plan_version_create(plan=demo_plan, user=analyst)
    changes = snapshot_diff(v1.snapshot, v2.snapshot)
    plan_version_revert(plan=demo_plan, version=v1, user=analyst)
    v3 = plan_version_create(plan=demo_plan, user=analyst)
    assert [(c.kind, c.what) for c in changes] == [("changed", "field accounts.name")]
    assert "upper()" in changes[0].details[0]
    assert v3.snapshot["_content"] == v1.snapshot["_content"]


def test_history_page_shows_field_level_changes(client_for, analyst, demo_plan):
    client = client_for(analyst)
    step = (
        demo_plan.entities.get(name="accounts")
        .fields.get(target_column="name")
        .steps.get(rule="truncate")
    )
    url = reverse(
        "mappings:step_save",
        kwargs={"slug": demo_plan.slug, "uuid": step.field.entity.uuid, "step": step.uuid},
    )
    client.post(url, {f"s{step.pk}-length": "70", f"s{step.pk}-on_overflow": "fail"})
    client.post(url, {f"s{step.pk}-length": "65", f"s{step.pk}-on_overflow": "fail"})
    body = client.get(reverse("mappings:plan_history", args=[demo_plan.slug])).content.decode()
    assert "rule step" in body and "params:" in body and "&#x27;length&#x27;: 65" in body


def test_version_pages_create_and_diff(client_for, analyst, demo_plan):
    client = client_for(analyst)
    client.post(reverse("mappings:version_create", args=[demo_plan.slug]), {"note": "first"})
    demo_plan.lookups.get(name="account-status").entries.filter(key="A").delete()
    client.post(reverse("mappings:version_create", args=[demo_plan.slug]), {"note": "second"})
    diff = client.get(reverse("mappings:version_diff", args=[demo_plan.slug]) + "?a=1&b=2")
    assert "lookup account-status" in diff.content.decode()
    assert "− A → Active" in diff.content.decode()


def test_viewer_cannot_create_or_revert_versions(client_for, viewer, demo_plan):
    client = client_for(viewer)
    assert client.post(reverse("mappings:version_create", args=[demo_plan.slug])).status_code == 403
    assert (
        client.post(reverse("mappings:version_revert", args=[demo_plan.slug, 1])).status_code == 403
    )


def test_revert_keeps_entity_field_step_and_lookup_identities(client_for, analyst, demo_plan):
    """The editor/profile URLs a user had open still answer the same entity after a revert."""
    entity = demo_plan.entities.get(name="accounts")
    field = entity.fields.get(target_column="name")
    step = field.steps.order_by("position").first()
    lookup = demo_plan.lookups.order_by("name").first()
    v1 = plan_version_create(plan=demo_plan, user=analyst)
    step_add(field=field, user=analyst, rule="upper")
    plan_version_revert(plan=demo_plan, version=v1, user=analyst)
    entity_after = demo_plan.entities.get(name="accounts")
    field_after = entity_after.fields.get(target_column="name")
    assert (entity_after.uuid, field_after.uuid) == (entity.uuid, field.uuid)
    assert field_after.steps.order_by("position").first().uuid == step.uuid
    assert demo_plan.lookups.get(name=lookup.name).uuid == lookup.uuid
    client = client_for(analyst)
    for name in ("mappings:entity_editor", "mappings:entity_profile"):
        assert client.get(reverse(name, args=[demo_plan.slug, entity.uuid])).status_code == 200
    assert plan_version_create(plan=demo_plan, user=analyst).content_hash == v1.content_hash


def test_revert_brings_a_deleted_entity_back_under_its_old_id(client_for, analyst, demo_plan):
    from mappings.services_edit import entity_delete

    v1 = plan_version_create(plan=demo_plan, user=analyst)
    entity = demo_plan.entities.get(name="contacts")
    old_url = reverse("mappings:entity_editor", args=[demo_plan.slug, entity.uuid])
    entity_delete(entity=entity, user=analyst)
    assert client_for(analyst).get(old_url).status_code == 404
    plan_version_revert(plan=demo_plan, version=v1, user=analyst)
    assert demo_plan.entities.get(name="contacts").uuid == entity.uuid
    assert client_for(analyst).get(old_url).status_code == 200
