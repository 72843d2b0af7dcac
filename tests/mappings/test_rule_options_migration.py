"""The data migration that made `trim.collapse_inner` and `value_map.on_null` explicit."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from mappings.demo_plan import demo_plan_install
from mappings.models import PlanVersion, RuleStep
from mappings.services import plan_version_create
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db
MIGRATION = importlib.import_module("mappings.migrations.0008_rule_options_explicit")


def test_stored_steps_get_the_options_they_meant_and_versions_still_match(analyst):
    import datetime as dt

    from mappings.demo import legacy_crm

    plan, _ = demo_plan_install(
        source=SystemFactory(),
        target=SystemFactory(),
        owner=analyst,
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    version = plan_version_create(plan=plan, note="before")
    # Turn the plan and its version back into what format 1 stored: no explicit options.
    for step in RuleStep.objects.filter(rule__in=["trim", "value_map"]):
        step.params = {
            k: v for k, v in step.params.items() if k not in ("collapse_inner", "on_null")
        }
        step.save()
    old = dict(version.snapshot)
    old.pop("rules_format")
    for entity in old["entities"]:
        for field in entity["fields"]:
            for s in field["steps"]:
                s["params"] = {
                    k: v for k, v in s["params"].items() if k not in ("collapse_inner", "on_null")
                }
    PlanVersion.objects.filter(pk=version.pk).update(snapshot=old)
    version.refresh_from_db()

    MIGRATION.forwards(apps, None)

    trims = RuleStep.objects.filter(rule="trim")
    maps = RuleStep.objects.filter(rule="value_map")
    assert {s.params["collapse_inner"] for s in trims} == {True} and trims.count() == 11
    assert {s.params["on_null"] for s in maps} == {"null"} and maps.count() == 2
    assert plan_version_create(plan=plan, note="after") == version  # same content: no new one
