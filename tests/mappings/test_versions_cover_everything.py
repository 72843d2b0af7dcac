"""A version holds everything the plan says — notes, lookup descriptions, the description,
validation rules, UAT cases — in its hash; revert restores it all after a confirmation page."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.urls import reverse

from mappings.services import plan_version_create
from mappings.services_versions import plan_version_revert
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db


def _name_field(plan):
    return plan.entities.get(name="accounts").fields.get(target_column="name")


def _edit_everything(plan) -> None:
    field = _name_field(plan)
    field.notes = "Name max 80 chars — approved by sales"
    field.save()
    lookup = plan.lookups.get(name="us-states")
    lookup.description = "USPS codes, 2026 list"
    lookup.save()
    rule = plan.validation_rules.order_by("name").first()
    rule.enabled = not rule.enabled
    rule.save()
    case = plan.uat_cases.order_by("position").first()
    case.expected_result = "Changed expectation"
    case.save()


@pytest.mark.parametrize(
    "what", ["field_note", "lookup_description", "validation_rule", "uat_case"]
)
def test_each_kind_of_content_changes_the_version_hash(demo_plan, analyst, what):
    v1 = plan_version_create(plan=demo_plan, user=analyst)
    if what == "field_note":
        field = _name_field(demo_plan)
        field.notes += " (edited)"
        field.save()
    elif what == "lookup_description":
        demo_plan.lookups.filter(name="us-states").update(description="edited")
    elif what == "validation_rule":
        demo_plan.validation_rules.filter(pk=demo_plan.validation_rules.first().pk).update(
            severity="warning"
            if demo_plan.validation_rules.first().severity == "blocking"
            else "blocking"
        )
    else:
        demo_plan.uat_cases.filter(pk=demo_plan.uat_cases.first().pk).update(steps="edited")
    v2 = plan_version_create(plan=demo_plan, user=analyst)
    assert v2.number == v1.number + 1
    assert v2.content_hash != v1.content_hash


def test_revert_restores_notes_descriptions_rules_and_cases(demo_plan, analyst):
    v1 = plan_version_create(plan=demo_plan, user=analyst)
    before = v1.snapshot["_document"]
    _edit_everything(demo_plan)
    plan_version_revert(plan=demo_plan, version=v1, user=analyst)
    again = plan_version_create(plan=demo_plan, user=analyst)
    assert again.number == v1.number  # same content as v1: v1 is returned
    assert again.snapshot["_document"] == before
    assert _name_field(demo_plan).notes == before["field_notes"]["accounts"]["name"]


def test_revert_asks_for_confirmation_listing_what_changes(client_for, analyst, demo_plan):
    v1 = plan_version_create(plan=demo_plan, user=analyst)
    _edit_everything(demo_plan)
    client = client_for(analyst)
    url = reverse("mappings:version_revert", args=[demo_plan.slug, v1.number])
    page = client.get(url).content.decode()
    still = _name_field(demo_plan).notes
    done = client.post(url)
    assert "Revert to version 1?" in page
    for what in ("field notes", "lookup descriptions", "validation rule", "UAT case"):
        assert what in page, what
    assert still == "Name max 80 chars — approved by sales"
    assert done.status_code == 302
    assert _name_field(demo_plan).notes != still


def test_revert_of_an_old_version_says_what_it_cannot_restore(client_for, analyst, demo_plan):
    v1 = plan_version_create(plan=demo_plan, user=analyst)
    old = {k: v for k, v in v1.snapshot.items() if k != "_document"}
    type(v1).objects.filter(pk=v1.pk).update(snapshot=old)  # as frozen before this change
    page = (
        client_for(analyst)
        .get(reverse("mappings:version_revert", args=[demo_plan.slug, 1]))
        .content.decode()
    )
    assert "frozen before versions held notes" in page


def test_viewer_cannot_open_the_revert_page(client_for, viewer, demo_plan, analyst):
    plan_version_create(plan=demo_plan, user=analyst)
    url = reverse("mappings:version_revert", args=[demo_plan.slug, 1])
    assert client_for(viewer).get(url).status_code == 403
