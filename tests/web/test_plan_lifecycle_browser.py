"""Plan lifecycle in Chromium: import YAML (validate, then confirm a schema not yet created),
copy, delete a plan that never ran, archive one that did."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import Plan, PlanVersion, System
from mappings.schema import schema_cache_clear
from mappings.yaml_io import plan_export_yaml
from runs.models import Run
from tests.factories import PASSWORD, UserFactory
from tests.mappings.workbench_fixtures import demo_files  # noqa: F401
from tests.web.browser import chromium, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_plan_lifecycle_in_the_browser(live_server, transactional_db, demo_files):
    schema_cache_clear()
    Group.objects.get_or_create(name="analyst")
    user = UserFactory(username="life", roles=["analyst"])
    source = System.objects.create(
        name="Legacy CRM", kind="sqlite", path=str(demo_files[0]), role="source"
    )
    target = System.objects.create(
        name="New CRM (UAT)", kind="sqlite", path=str(demo_files[1]), role="target"
    )
    plan, _ = demo_plan_install(
        source=source,
        target=target,
        owner=user,
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    Run.objects.create(plan=plan, version=version, target=target, launched_by=user)
    text = plan_export_yaml(plan=plan).replace(f"slug: {plan.slug}", "slug: next-crm", 1)
    text = text.replace(f"name: {plan.name}", "name: Next CRM", 1).replace(
        "target_table: accounts", "target_table: accounts_v2", 1
    )
    base = live_server.url
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base}/plans/")
        page.click("text=Import YAML…")
        page.fill("#id_yaml", text)
        page.click("button[value=validate]")
        problems = page.locator(".import-check ul.problems li").all_inner_texts()
        shot(page, "plan-import-validate")
        page.click("button[value=import]")
        refused = page.inner_text(".import-error")
        page.check("#id_allow_unknown_schema")
        page.click("button[value=import]")
        page.wait_for_selector("h1:has-text('Next CRM')")
        shot(page, "plan-imported")
        page.click("text=Copy plan")
        page.fill("#id_name", "Next CRM")
        page.click("text=Create the copy")
        duplicate = page.inner_text(".field-error, .msg-error")
        page.fill("#id_name", "Next CRM rehearsal")
        page.click("text=Create the copy")
        page.wait_for_selector("h1:has-text('Next CRM rehearsal')")
        page.click("text=Delete…")
        shot(page, "plan-delete-confirm")
        page.click("button:has-text('Delete the plan')")
        page.wait_for_selector("text=deleted")
        page.goto(f"{base}/plans/{plan.slug}/delete/")
        shot(page, "plan-delete-refused")
        page.click("button:has-text('Archive the plan')")
        page.wait_for_selector(".status-archived")
        shot(page, "plan-archived")
    line = text[: text.index("accounts_v2")].count("\n") + 1
    assert len(problems) == 1 and problems[0].startswith(f"line {line}, column ")
    assert problems[0].endswith(
        "entities[0].target_table: no table “accounts_v2” in target system “New CRM (UAT)”"
    )
    assert "not yet created" in refused
    assert "already exists" in duplicate
    assert not Plan.objects.filter(name="Next CRM rehearsal").exists()
    assert Plan.objects.get(pk=plan.pk).archived_at is not None
