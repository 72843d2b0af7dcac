"""A new team's first screen, and the field editor beside the grid at 1024 px (Chromium)."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import System
from mappings.schema import schema_cache_clear
from tests.factories import PASSWORD, UserFactory
from tests.mappings.workbench_fixtures import demo_files  # noqa: F401
from tests.web.browser import chromium, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _analyst(username: str):
    """An analyst, creating the role group a flushed (transactional) database lost."""
    Group.objects.get_or_create(name="analyst")
    return UserFactory(username=username, roles=["analyst"])


def _login(page, base: str, user) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_first_run_dashboard_lists_start_here_steps(live_server, transactional_db):
    user = _analyst("newbie")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _login(page, live_server.url, user)
        shot(page, "dashboard-first-run")
        steps = page.locator(".start-here li")
        titles = [steps.nth(i).locator("strong").inner_text() for i in range(steps.count())]
        first_link = page.get_attribute(".start-here li:first-child a", "href")
        System.objects.create(name="Legacy", kind="sqlite", path="/tmp/x.sqlite3", role="source")
        page.reload()
        done = page.locator(".start-here li.done strong").all_inner_texts()
    assert titles == [
        "Register the source system",
        "Register the target system",
        "Create a plan",
        "Map an entity",
        "Rehearse with a dry run",
    ]
    assert first_link == "/systems/new/"
    assert done == ["Register the source system"]


def test_viewer_sees_who_does_a_first_run_step(client_for, viewer):
    body = client_for(viewer).get("/").content.decode()
    assert "Start here" in body and "An analyst does this step." in body
    assert 'href="/systems/new/"' not in body


def test_field_editor_does_not_cover_the_grid_at_1024px(live_server, transactional_db, demo_files):
    schema_cache_clear()
    user = _analyst("narrow")
    source = System.objects.create(
        name="Legacy CRM", kind="sqlite", path=str(demo_files[0]), role="source"
    )
    target = System.objects.create(
        name="New CRM", kind="sqlite", path=str(demo_files[1]), role="target"
    )
    plan, _ = demo_plan_install(
        source=source,
        target=target,
        owner=user,
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    entity = plan.entities.get(name="accounts")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        _login(page, live_server.url, user)
        page.goto(f"{live_server.url}/plans/{plan.slug}/entities/{entity.uuid}/")
        page.click("#col-billing_state button")
        page.wait_for_selector("#field-editor form.add-step")
        shot(page, "editor-1024")
        grid = page.locator(".grid-card").bounding_box()
        editor = page.locator("#field-editor").bounding_box()
        covered = page.evaluate(
            "() => [...document.querySelectorAll('#grid button')].filter(b => {"
            " b.scrollIntoView({block: 'center'}); const r = b.getBoundingClientRect();"
            " const el = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);"
            " return !b.contains(el); }).map(b => b.closest('tr').id)"
        )
        buttons = page.locator("#grid button").count()
        page_overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
    overlaps = (
        grid["x"] < editor["x"] + editor["width"]
        and editor["x"] < grid["x"] + grid["width"]
        and grid["y"] < editor["y"] + editor["height"]
        and editor["y"] < grid["y"] + grid["height"]
    )
    assert not overlaps, (grid, editor)
    assert buttons == 13 and covered == []
    assert page_overflow <= 0
