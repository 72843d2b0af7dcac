"""The add-step form is built from the registry: parameters, example, dependencies, no pre-pick."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

from runs.engine.rule_examples import EXAMPLES, rule_example
from runs.engine.rules import REGISTRY
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _url(name, plan, column="billing_state", **kw):
    entity = plan.entities.get(name="accounts")
    return reverse(
        f"mappings:{name}", kwargs={"slug": plan.slug, "uuid": entity.uuid, "column": column, **kw}
    )


def test_every_registered_rule_has_an_example_its_own_validation_accepts():
    assert sorted(EXAMPLES) == sorted(REGISTRY)
    for name in REGISTRY:
        assert rule_example(name), name


def test_rule_example_is_computed_by_the_rule():
    assert rule_example("truncate") == [("“Acme Logistics”", "“Acme Log”", None)]
    assert rule_example("value_map")[1][2] == "no mapping for 'Z' in lookup 'status_codes'"


@pytest.mark.parametrize("rule", sorted(REGISTRY))
def test_step_form_renders_an_input_per_declared_parameter(client_for, analyst, demo_plan, rule):
    response = client_for(analyst).get(_url("step_form", demo_plan) + f"?rule={rule}", **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert escape(REGISTRY[rule].description) in body
    assert "Example" in body
    for param in REGISTRY[rule].params:
        assert f'name="new-{param.name}"' in body, param.name


def test_value_map_form_does_not_preselect_a_lookup(client_for, analyst, demo_plan):
    body = (
        client_for(analyst)
        .get(_url("step_form", demo_plan) + "?rule=value_map", **HTMX)
        .content.decode()
    )
    assert '<option value="" selected>— choose a lookup table —</option>' in body
    assert "account-status" in body and "us-states" in body


def test_value_map_without_a_lookup_is_refused_with_the_field_named(client_for, analyst, demo_plan):
    url = _url("step_add", demo_plan)
    response = client_for(analyst).post(
        url, {"rule": "value_map", "new-on_missing": "fail"}, **HTMX
    )
    body = response.content.decode()
    assert "New step (Value map): check its parameters." in body
    assert "This field is required." in body
    assert (
        demo_plan.entities.get(name="accounts")
        .fields.get(target_column="billing_state")
        .steps.filter(rule="value_map")
        .count()
        == 1
    )


def test_truncate_is_added_with_its_length_from_the_form(client_for, analyst, demo_plan):
    response = client_for(analyst).post(
        _url("step_add", demo_plan, column="name"),
        {"rule": "truncate", "new-length": "80", "new-on_overflow": "fail"},
        **HTMX,
    )
    field = demo_plan.entities.get(name="accounts").fields.get(target_column="name")
    assert response["HX-Trigger"] == "mapping-changed"
    assert field.steps.order_by("position").last().params == {"length": 80, "on_overflow": "fail"}


def test_missing_lookup_is_explained_with_a_link(client_for, analyst, demo_plan):
    demo_plan.lookups.all().delete()
    body = (
        client_for(analyst)
        .get(_url("step_form", demo_plan, column="account_status") + "?rule=value_map", **HTMX)
        .content.decode()
    )
    assert "This plan has no lookup table yet" in body
    assert f'href="/plans/{demo_plan.slug}/lookups/"' in body


def test_add_step_without_a_rule_type_says_so(client_for, analyst, demo_plan):
    body = (
        client_for(analyst).post(_url("step_add", demo_plan), {"rule": ""}, **HTMX).content.decode()
    )
    assert "Choose a rule type to add." in body


def test_viewer_cannot_open_the_add_step_form(client_for, viewer, demo_plan):
    response = client_for(viewer).get(_url("step_form", demo_plan) + "?rule=upper", **HTMX)
    assert response.status_code == 403
