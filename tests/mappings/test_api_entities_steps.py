"""The workbench REST API for entities, field mappings, rule steps and rule types: errors
naming the field or parameter, history recorded."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest

from mappings.models import EntityMapping, Plan
from runs.engine.rules import REGISTRY
from tests.factories import EntityMappingFactory
from tests.mappings.api_helpers import name_field, send
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- entities, fields


def test_api_entity_crud_defaults_keys_and_records_history(client_for, analyst, demo_plan):
    client = client_for(analyst)
    created = send(
        client,
        "post",
        "/api/entities/",
        {
            "plan": demo_plan.slug,
            "name": "accounts-2",
            "source_table": "customers",
            "target_table": "accounts",
        },
    )
    url = f"/api/entities/{created.json()['uuid']}/"
    patched = send(client, "patch", url, {"notes": "second wave"})
    entity = EntityMapping.objects.get(name="accounts-2")
    deleted = client.delete(url)
    history = list(
        EntityMapping.history.filter(id=entity.pk)
        .order_by("history_id")
        .values_list("history_type", "history_user__username")
    )
    assert (created.status_code, patched.status_code, deleted.status_code) == (201, 200, 204)
    assert (created.json()["source_key"], created.json()["target_key"]) == (["Customer_ID"], "id")
    assert patched.json()["notes"] == "second wave"
    assert history == [("+", "ana"), ("~", "ana"), ("-", "ana")]


def test_api_entity_unknown_table_names_the_field(client_for, analyst, demo_plan):
    response = send(
        client_for(analyst),
        "post",
        "/api/entities/",
        {"plan": demo_plan.slug, "source_table": "customers", "target_table": "nope"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "target_table"


def test_api_entity_duplicate_name_names_the_field(client_for, analyst, demo_plan):
    response = send(
        client_for(analyst),
        "post",
        "/api/entities/",
        {
            "plan": demo_plan.slug,
            "name": "accounts",
            "source_table": "customers",
            "target_table": "accounts",
        },
    )
    assert response.status_code == 400
    assert response.json()["field"] == "name"


def test_api_entity_list_filters_by_plan(client_for, viewer, demo_plan):
    EntityMappingFactory()
    body = client_for(viewer).get(f"/api/entities/?plan={demo_plan.slug}").json()
    assert [e["name"] for e in body["results"]] == ["accounts", "contacts", "orders"]


def test_api_field_duplicate_target_column_names_the_field(client_for, analyst, demo_plan):
    entity = demo_plan.entities.get(name="accounts")
    response = send(
        client_for(analyst),
        "post",
        "/api/field-mappings/",
        {"entity": str(entity.uuid), "target_column": "name", "source_columns": ["Cust_Name"]},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "target_column"


def test_api_field_unmap_and_remap_with_concat(client_for, analyst, demo_plan):
    client = client_for(analyst)
    entity = demo_plan.entities.get(name="accounts")
    phone = entity.fields.get(target_column="phone")
    deleted = client.delete(f"/api/field-mappings/{phone.uuid}/")
    created = send(
        client,
        "post",
        "/api/field-mappings/",
        {
            "entity": str(entity.uuid),
            "target_column": "phone",
            "source_columns": ["Phone_Number", "Email_Address"],
        },
    )
    patched = send(
        client, "patch", f"/api/field-mappings/{created.json()['uuid']}/", {"required": True}
    )
    assert (deleted.status_code, created.status_code, patched.status_code) == (204, 201, 200)
    assert [s["rule"] for s in created.json()["steps"]] == ["concat"]
    assert patched.json()["required"] is True


def test_api_field_unknown_source_column_names_the_field(client_for, analyst, demo_plan):
    field = demo_plan.entities.get(name="accounts").fields.get(target_column="phone")
    response = send(
        client_for(analyst),
        "patch",
        f"/api/field-mappings/{field.uuid}/",
        {"source_columns": ["Nope"]},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "source_columns"


def test_api_field_target_column_cannot_change(client_for, analyst, demo_plan):
    field = demo_plan.entities.get(name="accounts").fields.get(target_column="phone")
    response = send(
        client_for(analyst),
        "patch",
        f"/api/field-mappings/{field.uuid}/",
        {"target_column": "email"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "target_column"


def test_api_field_filter_rejects_a_non_uuid(client_for, viewer, demo_plan):
    response = client_for(viewer).get("/api/field-mappings/?entity=accounts")
    assert response.status_code == 400
    assert response.json()["field"] == "entity"


# --------------------------------------------------------------------------- rule steps


def test_api_step_unknown_rule_type_names_the_field(client_for, analyst, demo_plan):
    response = send(
        client_for(analyst),
        "post",
        "/api/rule-steps/",
        {"field": str(name_field(demo_plan).uuid), "rule": "shout"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "rule"


def test_api_step_bad_regex_names_the_parameter(client_for, analyst, demo_plan):
    response = send(
        client_for(analyst),
        "post",
        "/api/rule-steps/",
        {
            "field": str(name_field(demo_plan).uuid),
            "rule": "regex_validate",
            "params": {"pattern": "([a-z"},
        },
    )
    assert response.status_code == 400
    assert response.json()["field"] == "pattern"
    assert "regular expression" in response.json()["detail"]


def test_api_step_unknown_lookup_names_the_parameter(client_for, analyst, demo_plan):
    response = send(
        client_for(analyst),
        "post",
        "/api/rule-steps/",
        {
            "field": str(name_field(demo_plan).uuid),
            "rule": "value_map",
            "params": {"lookup": "no-such-table"},
        },
    )
    assert response.status_code == 400
    assert response.json()["field"] == "lookup"


def test_api_step_add_update_move_delete(client_for, analyst, demo_plan):
    client = client_for(analyst)
    field = name_field(demo_plan)
    added = send(
        client,
        "post",
        "/api/rule-steps/",
        {"field": str(field.uuid), "rule": "truncate", "params": {"length": 60}},
    )
    url = f"/api/rule-steps/{added.json()['uuid']}/"
    updated = send(client, "patch", url, {"params": {"length": "50"}})
    moved = send(client, "post", f"{url}move/", {"direction": "up"})
    order = list(field.steps.values_list("rule", flat=True))
    deleted = client.delete(url)
    assert (added.status_code, updated.status_code, moved.status_code, deleted.status_code) == (
        201,
        200,
        200,
        204,
    )
    assert updated.json()["params"] == {"length": 50, "on_overflow": "truncate"}
    assert moved.json()["position"] == 2
    assert order == ["trim", "title", "truncate", "truncate"]
    assert list(field.steps.values_list("position", flat=True)) == [0, 1, 2]


def test_api_step_bad_int_param_on_update_names_it(client_for, analyst, demo_plan):
    step = name_field(demo_plan).steps.get(rule="truncate")
    response = send(
        client_for(analyst), "patch", f"/api/rule-steps/{step.uuid}/", {"params": {"length": 0}}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "length"


def test_api_step_move_needs_a_direction(client_for, analyst, demo_plan):
    step = name_field(demo_plan).steps.first()
    response = send(
        client_for(analyst), "post", f"/api/rule-steps/{step.uuid}/move/", {"direction": "sideways"}
    )
    assert response.status_code == 400
    assert "direction" in response.json()


def test_api_step_edit_returns_a_signed_off_plan_to_draft(client_for, analyst, demo_plan):
    Plan.objects.filter(pk=demo_plan.pk).update(status="signed_off")
    send(
        client_for(analyst),
        "post",
        "/api/rule-steps/",
        {"field": str(name_field(demo_plan).uuid), "rule": "upper"},
    )
    demo_plan.refresh_from_db()
    assert demo_plan.status == "draft"


def test_api_rule_types_list_every_registry_rule(client_for, viewer):
    body = client_for(viewer).get("/api/rule-types/").json()
    value_map = next(r for r in body if r["name"] == "value_map")
    on_missing = next(p for p in value_map["params"] if p["name"] == "on_missing")
    assert [r["name"] for r in body] == list(REGISTRY)
    assert value_map["null_handling"] == REGISTRY["value_map"].null_handling
    assert on_missing == {
        "name": "on_missing",
        "type": "choice",
        "required": False,
        "default": "default",
        "choices": ["default", "fail", "keep"],
        "help": REGISTRY["value_map"].params[1].help,
        "min_value": None,
        "max_value": None,
    }


def test_api_rule_type_unknown_is_404(client_for, viewer):
    assert client_for(viewer).get("/api/rule-types/shout/").status_code == 404
