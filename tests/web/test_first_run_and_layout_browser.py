"""A new team's first screen, and the field editor beside the grid at 1024 px (Chromium)."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import System
from mappings.schema import schema_cache_clear, system_table
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
    entity.fields.get(target_column="name").delete()  # a required column left unmapped
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        _login(page, live_server.url, user)
        page.goto(f"{live_server.url}/plans/{plan.slug}/entities/{entity.uuid}/")
        page.wait_for_selector("#preview table.preview")
        page.select_option("#preview select[name=n]", "50")
        page.click("#preview button:has-text('Refresh')")
        page.wait_for_selector("#preview h2 small:has-text('50 rows')")
        preview = {1024: _preview_layout(page, 1024)}
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
        # REVIEW9 J1-4: a source column name is one line, never broken mid-word
        broken_names = page.evaluate(
            "() => [...document.querySelectorAll('#grid .ident')].filter(e =>"
            " e.getClientRects().length > 1).map(e => e.textContent)"
        )
        page_overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        page.set_viewport_size({"width": 1440, "height": 900})
        preview[1440] = _preview_layout(page, 1440)
    overlaps = (
        grid["x"] < editor["x"] + editor["width"]
        and editor["x"] < grid["x"] + grid["width"]
        and grid["y"] < editor["y"] + editor["height"]
        and editor["y"] < grid["y"] + grid["height"]
    )
    assert not overlaps, (grid, editor)
    assert buttons == 13 and covered == []
    assert broken_names == []
    assert page_overflow <= 0
    targets = [c.name for c in system_table(target, "accounts").columns]
    for width, seen in preview.items():
        assert seen["headers"] == targets, width
        assert seen["page_overflow"] <= 0 and seen["scrolls_inside"], (width, seen)
        assert seen["key_x_after_scroll"] == seen["key_x"], (width, seen)
        assert seen["summary"].startswith("50 rows"), seen["summary"]
        assert "1 problem" in seen["summary"] and seen["failing"] > 0, seen["summary"]
        assert all(": " in t and t.split(":")[0] for t in seen["bad_cells"]), seen["bad_cells"]
        assert seen["tallest_row"] < 2.5 * seen["shortest_row"], (width, seen)
    assert preview[1024]["missing"] == ["name"]


def _preview_layout(page, width: int) -> dict:
    """Measure the live preview: target-column headers, overflow, the sticky key column."""
    page.wait_for_selector("#preview table.preview tbody tr")
    box = page.locator("#preview .preview-scroll")
    seen = page.evaluate(
        """() => {
        const s = document.querySelector('#preview .preview-scroll');
        const key = () => document.querySelector('#preview tbody th.key-col')
            .getBoundingClientRect().x;
        const rows = [...document.querySelectorAll('#preview tbody tr')]
            .map(r => r.getBoundingClientRect().height);
        const out = {
          headers: [...document.querySelectorAll('#preview thead th.tcol')]
            .map(th => th.dataset.col),
          missing: [...document.querySelectorAll('#preview thead th.tcol.missing')]
            .map(th => th.dataset.col),
          page_overflow: document.documentElement.scrollWidth - window.innerWidth,
          scrolls_inside: s.scrollWidth > s.clientWidth,
          summary: document.querySelector('#preview h2 small').innerText,
          failing: document.querySelectorAll('#preview tr.row-failed').length,
          bad_cells: [...document.querySelectorAll('#preview td.bad')].map(td => td.innerText),
          tallest_row: Math.max(...rows), shortest_row: Math.min(...rows),
          key_x: Math.round(key() - s.getBoundingClientRect().x),
        };
        return out;
        }"""
    )
    box.scroll_into_view_if_needed()
    shot(page, f"preview-{width}")
    seen["key_x_after_scroll"] = page.evaluate(
        """() => { const s = document.querySelector('#preview .preview-scroll');
        s.scrollLeft = s.scrollWidth;
        const x = document.querySelector('#preview tbody th.key-col').getBoundingClientRect().x;
        const out = Math.round(x - s.getBoundingClientRect().x);
        return out; }"""
    )
    page.evaluate("() => { document.querySelector('#preview .preview-scroll').scrollLeft = 0; }")
    return seen


def test_profile_suggestion_applies_with_one_click(live_server, transactional_db, demo_files):
    schema_cache_clear()
    user = _analyst("profiler")
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
    field = entity.fields.get(target_column="billing_state")
    field.steps.all().delete()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _login(page, live_server.url, user)
        page.goto(f"{live_server.url}/plans/{plan.slug}/entities/{entity.uuid}/")
        page.click("text=profile & suggestions")
        page.select_option("#dupes", ["Email_Address"])
        page.click("text=Find duplicates")
        page.wait_for_selector("h2:has-text('Duplicate candidates on Email_Address')")
        shot(page, "profile-entity")
        dupes = page.locator("#duplicates ul.dupes li").count()
        state = page.locator(".profile-col", has=page.locator("h3 code", has_text="State_Code"))
        suggestions = state.locator(".suggest-list li").all_inner_texts()
        state.locator("a.apply:has-text('Apply to billing_state')").first.click()
        page.wait_for_selector("#apply-values")
        shot(page, "profile-apply-preview")
        rows = page.locator("#apply-values tbody tr").count()
        page.click("#apply-confirm")
        page.wait_for_selector("#grid")
        shot(page, "profile-apply-done")
        message = page.inner_text("ul.messages")
        rules = page.inner_text("#col-billing_state")
    assert any(s.startswith("suggest: upper (short codes") for s in suggestions), suggestions
    assert not any("title" in s for s in suggestions), suggestions
    assert rows > 0 and dupes > 0
    assert "Added to “billing_state”: upper." in message
    assert "upper" in rules
    assert list(field.steps.values_list("rule", flat=True)) == ["upper"]
