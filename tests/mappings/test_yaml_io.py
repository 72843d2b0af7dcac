"""Plan YAML export / import: round trips, secrets, audit, replace, delete policies.
Errors naming line and column: test_yaml_io_errors.py; random plans: test_yaml_io_property.py."""
# ruff: noqa: F811 -- pytest fixtures imported from yaml_fixtures are used as arguments

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml

from mappings.demo_plan import PLAN_SLUG
from mappings.models import Plan, RuleStep
from mappings.services import plan_version_create
from mappings.yaml_io import plan_export_yaml, plan_import_yaml
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from tests.mappings.yaml_fixtures import created_nothing, demo, demo_text, systems, text_position  # noqa: F401
from validation.models import AuditEvent, ValidationRule

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- export


def test_plan_export_yaml_demo_plan_round_trips_byte_identical(demo, analyst):
    first = plan_export_yaml(plan=demo)

    plan = plan_import_yaml(text=first, user=analyst, replace=True, allow_unknown_schema=True)

    assert plan.pk == demo.pk
    assert plan_export_yaml(plan=plan) == first


def test_plan_export_yaml_demo_plan_reimports_after_delete(demo_text, analyst):
    plan = plan_import_yaml(text=demo_text, user=analyst, allow_unknown_schema=True)

    assert plan_export_yaml(plan=plan) == demo_text
    assert plan.owner == analyst
    assert plan.entities.count() == 3


def test_plan_export_yaml_layout_follows_the_documented_format(demo):
    data = yaml.safe_load(plan_export_yaml(plan=demo))

    name = data["entities"][0]["fields"][1]
    assert list(data) == [
        "format",
        "plan",
        "systems",
        "lookups",
        "entities",
        "validation_rules",
        "uat_cases",
        "milestones",
    ]
    assert data["format"] == "migration-planner/v2"
    assert data["systems"] == {"source": "Legacy CRM", "target": "New CRM"}
    assert name == {
        "target": "name",
        "sources": ["Cust_Name"],
        "steps": [
            {"rule": "trim", "collapse_inner": True},
            {"rule": "title"},
            {"rule": "truncate", "length": 80, "on_overflow": "fail"},
        ],
        "required": True,
        "notes": "Target allows 80 characters; longer names go to the error queue.",
    }
    assert data["lookups"][1]["entries"]["CA"] == "California"
    assert data["milestones"][0]["start"] == dt.date(2026, 3, 2)


def test_plan_export_yaml_never_contains_secrets_or_connection_details(demo):
    source, target = demo.source, demo.target
    for system, secret in ((source, "s3cr3t-source-pw"), (target, "t0p-target-pw")):
        system.kind, system.host, system.database = "postgresql", f"{system.pk}.db.internal", "crm"
        system.username, system.path = "etl_user_xyz", ""
        system.set_secret(secret)
        system.save()

    text = plan_export_yaml(plan=demo)

    for system, secret in ((source, "s3cr3t-source-pw"), (target, "t0p-target-pw")):
        system.refresh_from_db()
        assert system.secret_ciphertext
        assert secret not in text
        assert system.secret_ciphertext not in text
        assert system.host not in text
        assert "etl_user_xyz" not in text


def test_plan_import_yaml_normalises_rule_params_like_the_workbench(demo_text, analyst):
    plan = plan_import_yaml(text=demo_text, user=analyst, allow_unknown_schema=True)

    step = RuleStep.objects.get(
        field__entity__plan=plan, field__target_column="name", rule="truncate"
    )
    assert step.params == {"length": 80, "on_overflow": "fail"}
    trim = RuleStep.objects.filter(field__entity__plan=plan, rule="trim").first()
    assert trim.params == {"empty_to_null": True, "collapse_inner": True}


def test_plan_import_yaml_records_an_audit_event(demo_text, analyst):
    plan = plan_import_yaml(text=demo_text, user=analyst, allow_unknown_schema=True)

    event = AuditEvent.objects.get(action="import")
    assert event.actor == analyst
    assert event.object_id == str(plan.uuid)
    assert event.after["entities"] == 3
    assert event.after["replaced"] is False


def test_plan_import_yaml_replace_keeps_versions_and_resets_status(demo, analyst):
    version = plan_version_create(plan=demo, user=analyst)
    Plan.objects.filter(pk=demo.pk).update(status="signed_off")
    rule_pk = ValidationRule.objects.get(plan=demo, name="Customer_ID unique").pk
    text = plan_export_yaml(plan=demo).replace(
        "title: Search for a customer", "title: Find a customer"
    )

    plan = plan_import_yaml(text=text, user=analyst, replace=True, allow_unknown_schema=True)

    assert list(plan.versions.all()) == [version]
    assert plan.status == "draft"
    assert ValidationRule.objects.get(plan=plan, name="Customer_ID unique").pk == rule_pk
    assert plan.uat_cases.first().title.startswith("Find a customer")


def test_plan_import_yaml_existing_slug_without_replace_is_refused(demo, analyst):
    text = plan_export_yaml(plan=demo)
    line, column = text_position(text, PLAN_SLUG)

    with pytest.raises(ApplicationError) as err:
        plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)

    assert err.value.message.startswith(
        f"line {line}, column {column}: plan.slug: a plan with slug '{PLAN_SLUG}' already exists"
    )
    assert demo.entities.count() == 3


def test_plan_import_yaml_refuses_a_user_without_edit_rights(demo_text, viewer):
    with pytest.raises(PermissionDeniedError):
        plan_import_yaml(text=demo_text, user=viewer, allow_unknown_schema=True)

    assert created_nothing()


# --------------------------------------------------------------------------- delete policy


def test_plan_yaml_without_delete_policy_imports_as_ignore(demo_text, analyst):
    assert "delete_policy" not in demo_text  # files written before the field existed
    plan = plan_import_yaml(text=demo_text, user=analyst, allow_unknown_schema=True)
    assert set(plan.entities.values_list("delete_policy", flat=True)) == {"ignore"}


def test_plan_yaml_delete_policy_mark_round_trips(demo, analyst):
    demo.entities.filter(name="accounts").update(
        delete_policy="mark", delete_mark_column="account_status", delete_mark_value="Deleted"
    )
    text = plan_export_yaml(plan=demo)
    assert "delete_policy: mark" in text and "delete_mark_column: account_status" in text
    plan = plan_import_yaml(text=text, user=analyst, replace=True, allow_unknown_schema=True)
    accounts = plan.entities.get(name="accounts")
    assert (accounts.delete_policy, accounts.delete_mark_column, accounts.delete_mark_value) == (
        "mark",
        "account_status",
        "Deleted",
    )
    assert plan_export_yaml(plan=plan) == text


def test_plan_yaml_mark_policy_without_column_is_refused_with_its_place(demo_text, analyst):
    text = demo_text.replace(
        "  load_mode: upsert\n", "  load_mode: upsert\n  delete_policy: mark\n", 1
    )
    with pytest.raises(ApplicationError) as caught:
        plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)
    assert "delete_policy mark needs a delete_mark_column" in str(caught.value)
    assert created_nothing()


def test_plan_import_yaml_v1_file_keeps_the_rule_behaviour_it_was_written_for(demo_text, analyst):
    """A v1 file's `trim` collapsed inner whitespace and its `value_map` kept null/blank null:
    imported today it gets those options explicitly, so its output does not change."""
    old = demo_text.replace("format: migration-planner/v2", "format: migration-planner/v1")
    old = re.sub(r"\n *collapse_inner: true", "", old)
    assert "collapse_inner" not in old and "on_null" not in old
    plan = plan_import_yaml(text=old, user=analyst, allow_unknown_schema=True)
    trims = RuleStep.objects.filter(field__entity__plan=plan, rule="trim")
    maps = RuleStep.objects.filter(field__entity__plan=plan, rule="value_map")
    assert trims.count() == 11 and maps.count() == 2
    assert {s.params["collapse_inner"] for s in trims} == {True}
    assert {s.params["on_null"] for s in maps} == {"null"}
