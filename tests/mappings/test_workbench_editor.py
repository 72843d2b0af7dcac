"""The entity/field mapping editor pages (htmx partials) and their role rules."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.urls import reverse

from mappings.models import FieldMapping, RuleStep
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _entity(plan, name="accounts"):
    return plan.entities.get(name=name)


def _url(name, plan, entity, **kw):
    return reverse(f"mappings:{name}", kwargs={"slug": plan.slug, "uuid": entity.uuid, **kw})


def test_editor_page_lists_target_columns_with_warnings(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    response = client_for(analyst).get(_url("entity_editor", demo_plan, entity))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="col-billing_state"' in body
    assert "longer than the target" in body
    assert 'hx-trigger="load"' in body


def test_editor_warns_about_required_unmapped_column(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    entity.fields.get(target_column="name").delete()
    response = client_for(analyst).get(_url("entity_grid", demo_plan, entity), **HTMX)
    assert "Required target column is unmapped." in response.content.decode()


def test_editor_warns_about_lookup_coverage_with_counts(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    demo_plan.lookups.get(name="account-status").entries.filter(key="A").delete()
    response = client_for(analyst).get(_url("entity_grid", demo_plan, entity), **HTMX)
    body = response.content.decode()
    assert "Lookup “account-status” has no entry for" in body
    assert "“A” ×" in body


def test_field_editor_generates_step_forms_from_the_registry(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    url = _url("field_editor", demo_plan, entity, column="billing_state")
    body = client_for(analyst).get(url, **HTMX).content.decode()
    assert '<select name="s' in body and "on_missing" in body
    assert '<option value="us-states" selected>' in body
    assert 'type="checkbox"' in body


def test_step_add_move_delete_via_htmx(client_for, analyst, demo_plan):
    client = client_for(analyst)
    entity = _entity(demo_plan)
    field = entity.fields.get(target_column="name")
    add = client.post(_url("step_add", demo_plan, entity, column="name"), {"rule": "upper"}, **HTMX)
    step = field.steps.get(rule="upper")
    client.post(_url("step_move", demo_plan, entity, step=step.uuid), {"direction": "up"}, **HTMX)
    order_after_move = list(field.steps.values_list("rule", flat=True))
    client.post(_url("step_delete", demo_plan, entity, step=step.uuid), **HTMX)
    assert add.status_code == 200
    assert add["HX-Trigger"] == "mapping-changed"
    assert order_after_move == ["trim", "title", "upper", "truncate"]
    assert list(field.steps.values_list("rule", flat=True)) == ["trim", "title", "truncate"]


def test_step_save_validates_and_names_the_step(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    step = entity.fields.get(target_column="name").steps.get(rule="truncate")
    url = _url("step_save", demo_plan, entity, step=step.uuid)
    bad = client_for(analyst).post(
        url, {f"s{step.pk}-length": "0", f"s{step.pk}-on_overflow": "fail"}, **HTMX
    )
    good = client_for(analyst).post(
        url, {f"s{step.pk}-length": "60", f"s{step.pk}-on_overflow": "truncate"}, **HTMX
    )
    step.refresh_from_db()
    assert "Step 3 (truncate)" in bad.content.decode()
    assert good["HX-Trigger"] == "mapping-changed"
    assert step.params == {"length": 60, "on_overflow": "truncate"}


def test_field_save_maps_many_to_one_with_concat_first(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    entity.fields.get(target_column="billing_street").delete()
    url = _url("field_save", demo_plan, entity, column="billing_street")
    response = client_for(analyst).post(
        url, {"source_columns": ["Address_Line1", "Address_Line2"], "notes": "two lines"}, **HTMX
    )
    field = FieldMapping.objects.get(entity=entity, target_column="billing_street")
    assert response.status_code == 200
    assert field.source_columns == ["Address_Line1", "Address_Line2"]
    assert list(field.steps.values_list("rule", flat=True)) == ["concat"]


def test_removing_the_combining_step_of_a_many_to_one_field_is_refused(
    client_for, analyst, demo_plan
):
    entity = _entity(demo_plan)
    step = entity.fields.get(target_column="billing_street").steps.get(rule="concat")
    response = client_for(analyst).post(
        _url("step_delete", demo_plan, entity, step=step.uuid), **HTMX
    )
    assert "its first step must be concat or coalesce" in response.content.decode()
    assert RuleStep.objects.filter(pk=step.pk).exists()


def test_preview_partial_marks_failing_cells(client_for, viewer, demo_plan):
    entity = _entity(demo_plan)
    url = _url("entity_preview", demo_plan, entity) + "?n=50"
    body = client_for(viewer).get(url, **HTMX).content.decode()
    assert 'class="res bad" data-col="' in body and '<span class="cell-error"><b>' in body
    assert 'class="row-failed"' in body


@pytest.mark.parametrize(
    "name,kw,data",
    [
        ("step_add", {"column": "name"}, {"rule": "upper"}),
        ("field_save", {"column": "name"}, {"source_columns": ["Cust_Name"]}),
        ("field_delete", {"column": "name"}, {}),
        ("entity_suggest_decide", {}, {"source": "City", "target": "billing_city"}),
    ],
)
def test_viewer_cannot_edit_the_mapping(client_for, viewer, demo_plan, name, kw, data):
    entity = _entity(demo_plan)
    response = client_for(viewer).post(_url(name, demo_plan, entity, **kw), data, **HTMX)
    assert response.status_code == 403
    assert entity.fields.get(target_column="name").steps.count() == 3


def test_suggestions_accept_creates_the_field_and_reject_hides_it(client_for, analyst, demo_plan):
    client = client_for(analyst)
    entity = _entity(demo_plan)
    entity.fields.filter(target_column__in=["name", "billing_city"]).delete()
    listing = client.get(_url("entity_suggest", demo_plan, entity), **HTMX).content.decode()
    decide = _url("entity_suggest_decide", demo_plan, entity)
    client.post(decide, {"source": "Cust_Name", "target": "name", "decision": "accept"}, **HTMX)
    after = client.post(
        decide, {"source": "City", "target": "billing_city", "decision": "reject"}, **HTMX
    ).content.decode()
    assert "Cust_Name" in listing and "billing_city" in listing
    assert entity.fields.get(target_column="name").source_columns == ["Cust_Name"]
    assert "billing_city" not in after


def _settings_data(entity, **extra):
    data = {
        "source_table": entity.source_table,
        "target_table": entity.target_table,
        "name": entity.name,
        "source_key": ", ".join(entity.source_key),
        "target_key": entity.target_key,
        "external_id": entity.external_id,
        "load_mode": entity.load_mode,
        "load_order": entity.load_order,
    }
    return {**data, **extra}


def test_entity_settings_saves_a_mark_delete_policy(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    url = _url("entity_settings", demo_plan, entity)
    form = client_for(analyst).get(url).content.decode()
    assert 'name="delete_policy"' in form and 'name="delete_mark_column"' in form
    response = client_for(analyst).post(
        url,
        _settings_data(
            entity,
            delete_policy="mark",
            delete_mark_column="account_status",
            delete_mark_value="Deleted",
        ),
    )
    assert response.status_code == 302
    entity.refresh_from_db()
    assert (entity.delete_policy, entity.delete_mark_column) == ("mark", "account_status")
    page = client_for(analyst).get(_url("entity_editor", demo_plan, entity)).content.decode()
    assert "Mark (set a column)" in page and "account_status" in page


def test_entity_settings_refuses_a_mark_column_the_target_lacks(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    response = client_for(analyst).post(
        _url("entity_settings", demo_plan, entity),
        _settings_data(entity, delete_policy="mark", delete_mark_column="no_such_col"),
    )
    assert response.status_code == 200
    assert "Mark column “no_such_col” is not a column of" in response.content.decode()
    entity.refresh_from_db()
    assert entity.delete_policy == "ignore"


def test_lookup_coverage_warning_counts_null_and_blank_values(client_for, analyst, demo_plan):
    entity = _entity(demo_plan)
    states = demo_plan.lookups.get(name="us-states")
    states.default_value = "Unknown"
    states.save()
    step = RuleStep.objects.get(
        field__entity=entity, field__target_column="billing_state", rule="value_map"
    )
    body = client_for(analyst).get(_url("entity_grid", demo_plan, entity), **HTMX).content
    warning = next(line for line in body.decode().splitlines() if "State_Code are NULL" in line)
    assert "with on_null “default” they get the table’s default “Unknown”" in warning.replace(
        "&#x27;", "’"
    ).replace("'", "’")
    step.params = {**step.params, "on_null": "fail"}
    step.save()
    body = client_for(analyst).get(_url("entity_grid", demo_plan, entity), **HTMX).content
    assert "with on_null “fail” those rows fail" in body.decode()


def test_field_editor_shows_each_steps_null_handling(client_for, analyst, demo_plan):
    from runs.engine.rules import REGISTRY

    entity = _entity(demo_plan)
    url = _url("field_editor", demo_plan, entity, column="billing_state")
    body = client_for(analyst).get(url, **HTMX).content.decode()
    for rule in ("trim", "upper", "value_map"):
        shown = REGISTRY[rule].null_handling.replace("'", "&#x27;")
        assert f'<p class="rule-nulls muted">Null handling: {shown}</p>' in body
