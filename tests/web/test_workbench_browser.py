"""Browser journey through the mapping workbench (Chromium via Playwright).

An analyst creates a plan on the demo systems, adds an entity, accepts suggested field
mappings, adds a rule step and watches the live preview change, then freezes a version.
Screenshots of every screen go to artifacts/screenshots/workbench-*.png.
"""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from mappings.models import FieldMapping, Plan, PlanVersion, System
from mappings.schema import schema_cache_clear
from tests.factories import PASSWORD, UserFactory
from tests.mappings.workbench_fixtures import demo_files  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def workbench_env(transactional_db, demo_files):  # noqa: F811
    schema_cache_clear()
    group, _ = Group.objects.get_or_create(name="analyst")
    user = UserFactory(username="analyst-web", roles=["analyst"])
    user.groups.add(group)
    System.objects.create(name="Legacy CRM", kind="sqlite", path=str(demo_files[0]), role="source")
    System.objects.create(
        name="New CRM (UAT)",
        kind="sqlite",
        path=str(demo_files[1]),
        role="target",
        environment="uat",
    )
    return user


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"workbench-{name}.png"), full_page=True)


def _login(page, base: str, user) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")


def _create_plan(page, base: str) -> None:
    page.goto(f"{base}/plans/new/")
    page.fill("#id_name", "CRM accounts rehearsal")
    page.select_option("#id_source", label="Legacy CRM")
    page.select_option("#id_target", label="New CRM (UAT)")
    _shot(page, "01-plan-form")
    page.click("text=Create plan")
    page.wait_for_selector("h1:has-text('CRM accounts rehearsal')")
    _shot(page, "02-plan-detail")


def _add_entity(page) -> None:
    page.click("text=Add entity")
    page.select_option("#id_source_table", "customers")
    page.select_option("#id_target_table", "accounts")
    _shot(page, "03-entity-form")
    page.click("button:has-text('Add entity')")
    page.wait_for_selector("#grid")
    page.wait_for_selector("#preview table, #preview .msg-error")
    _shot(page, "04-editor-empty")


def _accept_suggestions(page, count: int) -> None:
    page.click("text=Suggest mappings")
    page.wait_for_selector("#suggestions table")
    _shot(page, "05-suggestions")
    for _ in range(count):
        rows = page.locator("#suggestions button:has-text('Accept')").count()
        page.locator("#suggestions button:has-text('Accept')").first.click()
        page.wait_for_function(
            "n => document.querySelectorAll('#suggestions button.primary-lite').length < n",
            arg=rows,
        )
    # Every accept refreshes the preview (nothing was mapped before): wait until it shows them
    # all and no refresh is out, so the next step reads a settled preview.
    page.wait_for_function(
        "n => { const p = document.querySelector('#preview');"
        " return p.querySelectorAll('thead th.src').length === n"
        " && !p.classList.contains('htmx-request'); }",
        arg=count,
    )
    _shot(page, "06-after-accept")


def _add_rule_and_watch_preview(page) -> tuple[str, str]:
    page.click("#col-name button")
    page.wait_for_selector("#field-editor form.add-step")
    before = page.inner_text("#preview tbody tr:first-child")
    page.select_option("#field-editor select[name=rule]", "upper")
    page.click("#field-editor button:has-text('Add step')")
    page.wait_for_function(
        "() => { const c = document.querySelector("
        "'#preview tbody tr td.res[data-col=name] .value');"
        " return c && c.innerText === c.parentElement.previousElementSibling.innerText"
        ".toUpperCase(); }"
    )
    _shot(page, "07-rule-added-preview")
    return before, page.inner_text("#preview tbody tr:first-child")


def test_workbench_journey(live_server, page, workbench_env):
    base = live_server.url
    _login(page, base, workbench_env)
    _create_plan(page, base)
    _add_entity(page)
    _accept_suggestions(page, 4)
    before, after = _add_rule_and_watch_preview(page)
    page.click("text=History & versions")
    page.wait_for_selector("text=Every edit")
    page.click("button:has-text('Create version')")
    page.wait_for_selector("text=Version 1 saved")
    _shot(page, "08-version-created")
    plan = Plan.objects.get(name="CRM accounts rehearsal")
    assert FieldMapping.objects.filter(entity__plan=plan).count() == 4
    assert (
        FieldMapping.objects.get(entity__plan=plan, target_column="name").steps.get().rule
        == "upper"
    )
    assert after != before
    assert PlanVersion.objects.filter(plan=plan, number=1).exists()
    _export_pdf(page, base, plan)


def _export_pdf(page, base: str, plan) -> None:
    """Export the plan document as PDF from the plan page and render its first page."""
    import subprocess

    page.goto(f"{base}/plans/{plan.slug}/")
    with page.expect_download() as download:
        page.click("a.btn:has-text('PDF')")
    path = SHOTS / "workbench-09-plan-document.pdf"
    download.value.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "1",
            str(path),
            str(SHOTS / "workbench-09-plan-document"),
        ],
        check=True,
    )
    pages = list(SHOTS.glob("workbench-09-plan-document*.png"))
    assert pages, "pdftoppm rendered no page"
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "CRM accounts rehearsal" in text and "Field mapping" in text
