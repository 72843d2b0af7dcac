"""Every registered rule type can be added, edited and previewed through the field editor.

One Chromium page is shared by the whole module (one test per rule type, parametrised over the
registry): a rule type added to ``runs/engine/rules/`` without a worked example or without a
form that works in the browser fails here. Its tests once left content types that a later
serialized-rollback test collided with; since the flush and restore are one transaction
(tests/support/db_baseline.py) they may run in any order (checked: this module, then
test_runs_control.py). The form is filled from the rule's example parameters
(``runs/engine/rule_examples.py``) by each parameter's declared type.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from mappings import services_edit as edit
from mappings.models import RuleStep, System
from mappings.preview import entity_preview
from mappings.schema import schema_cache_clear
from mappings.services_lookups import lookup_entry_save, lookup_save
from runs.engine.rule_examples import EXAMPLE_ENTITY, EXAMPLE_LOOKUP, EXAMPLES
from runs.engine.rules import REGISTRY, validate_params
from tests.factories import PASSWORD, UserFactory
from tests.mappings.workbench_fixtures import demo_files  # noqa: F401
from tests.web.browser import chromium, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
COLUMN = {"reference_lookup": ("account_id", ["Customer_ID"])}  # else ("title", ["Title"])


@pytest.fixture(scope="module")
def shared_page():
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()


@pytest.fixture
def contacts_field(transactional_db, demo_files):  # noqa: F811
    """A plan whose only entity maps source contacts to target contacts, one column mapped."""
    schema_cache_clear()
    user = UserFactory(username="rules-web", roles=["analyst"])
    user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    source = System.objects.create(
        name="Legacy CRM", kind="sqlite", path=str(demo_files[0]), role="source"
    )
    target = System.objects.create(
        name="New CRM", kind="sqlite", path=str(demo_files[1]), role="target"
    )
    plan = edit.plan_create(
        user=user, data={"name": "Rule forms", "source": source, "target": target}
    )
    entity = edit.entity_create(
        plan=plan,
        user=user,
        data={
            "source_table": "contacts",
            "target_table": "contacts",
            "source_key": ["Contact_ID"],
            "target_key": "id",
            "load_order": 5,
        },
    )
    return user, plan, entity


def _fill(page, rule: str, prefix: str, params: dict) -> None:
    """Set each declared parameter's input by its type."""
    for param in REGISTRY[rule].params:
        if param.name not in params:
            continue
        value, selector = params[param.name], f"#id_{prefix}-{param.name}"
        if param.type == "bool":
            page.set_checked(selector, bool(value))
        elif param.type in ("choice", "lookup", "entity", "column"):
            page.select_option(selector, value)
        elif param.type == "list":
            page.fill(selector, "\n".join(value))
        else:
            page.fill(selector, str(value))


def _changed(rule: str, params: dict) -> dict:
    """The example parameters with one value changed, by the first editable parameter's type."""
    out = dict(params)
    for kind in ("bool", "int", "choice", "str", "list"):
        for param in REGISTRY[rule].params:
            if param.type != kind:
                continue
            value = params.get(param.name, param.default)
            if kind == "bool":
                out[param.name] = not value
            elif kind == "int":
                out[param.name] = value + 1
            elif kind == "choice":
                out[param.name] = next(c for c in param.choices if c != value)
            elif kind == "str":
                out[param.name] = (value or "") + "x"
            else:
                out[param.name] = [*value, "%d.%m.%Y"]
            return out
    return out


def _choose_rule(page, rule: str) -> None:
    with page.expect_response(lambda r: "/steps/form/" in r.url):
        page.select_option("#new-rule", rule)
    page.wait_for_selector(f"#new-step .rule-about:has-text('{REGISTRY[rule].description[:20]}')")


def _dependency(page, user, plan, rule: str) -> None:
    """value_map / reference_lookup explain the missing lookup / entity, then work once made."""
    note = page.inner_text("#new-step .dependency")
    link = page.get_attribute("#new-step .dependency a", "href")
    if rule == "value_map":
        assert "no lookup table yet" in note and link == f"/plans/{plan.slug}/lookups/"
        lookup = lookup_save(plan=plan, user=user, data={"name": EXAMPLE_LOOKUP})
        lookup_entry_save(lookup=lookup, user=user, key="Mr", value="Mister")
    else:
        assert "no other entity yet" in note and link == f"/plans/{plan.slug}/entities/new/"
        edit.entity_create(
            plan=plan,
            user=user,
            data={
                "source_table": "customers",
                "target_table": "accounts",
                "source_key": ["Customer_ID"],
                "target_key": "id",
                "load_order": 0,
                "name": EXAMPLE_ENTITY,
            },
        )
    page.select_option("#new-rule", "")
    _choose_rule(page, rule)
    assert page.locator("#new-step .dependency").count() == 0
    assert page.input_value(f"#id_new-{REGISTRY[rule].params[0].name}") == ""  # no pre-pick


@pytest.mark.parametrize("rule", sorted(REGISTRY))
def test_every_rule_type_adds_edits_and_previews_in_the_browser(
    live_server, shared_page, contacts_field, rule
):
    user, plan, entity = contacts_field
    page, base = shared_page, live_server.url
    column, sources = COLUMN.get(rule, ("title", ["Title"]))
    field = edit.field_create(
        entity=entity, user=user, data={"target_column": column, "source_columns": sources}
    )
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/plans/{plan.slug}/entities/{entity.uuid}/")
    page.click(f"#col-{column} button")
    page.wait_for_selector("#field-editor form.add-step")
    _choose_rule(page, rule)
    if rule in ("value_map", "reference_lookup"):
        _dependency(page, user, plan, rule)
    example = EXAMPLES[rule].params
    _fill(page, rule, "new", example)
    shot(page, f"rule-{rule}-1-form")
    with page.expect_response(lambda r: "/preview/" in r.url):
        page.click("#field-editor form.add-step button.btn")
    page.wait_for_selector(f"#field-editor .step .rule:text-is('{rule}')")
    step = RuleStep.objects.get(field=field)
    assert step.rule == rule
    assert step.params == validate_params(rule, example)
    assert page.locator("#field-editor [role=alert]").count() == 0
    if REGISTRY[rule].params:
        changed = _changed(rule, example)
        _fill(page, rule, f"s{step.pk}", changed)
        with page.expect_response(lambda r: "/preview/" in r.url):
            page.click("#field-editor .step form.params button")
        step.refresh_from_db()
        assert step.params == validate_params(rule, changed)
    else:
        assert page.locator("#field-editor .step form.params").count() == 0
    page.wait_for_selector(f"#grid #col-{column} .rule:text-is('{rule}')")
    page.wait_for_selector("#preview table.preview tbody tr")
    assert page.locator("#preview .msg-error").count() == 0
    shot(page, f"rule-{rule}-2-added")
    expected = entity_preview(entity=entity, limit=20).rows[0]
    cell = next(c for c in expected.result if c.column == column)
    shown = page.inner_text(f"#preview tbody tr:first-child td[data-col='{column}'] .value")
    assert shown == ("NULL" if cell.value is None else cell.value)
