"""Browser journey: pre-validation, the run report, UAT results, sign-off, production gate.

Screenshots of every screen go to artifacts/screenshots/validation-*.png.
"""
# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runs.services import run_create
from tests.factories import PASSWORD, MilestoneFactory
from tests.runs.conftest import (  # noqa: F401
    _pg_system,
    demo_plan,
    demo_source_db,
    demo_target_db,
    eager_celery,
)
from validation.models import SignOff

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        yield chromium
        chromium.close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"validation-{name}.png"), full_page=True)


def _assert_fits(page, *urls: str) -> None:
    """At 1024 and 1440 px no page is wider than the window: wide tables scroll in their card."""
    for width in (1024, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        for url in urls:
            page.goto(url)
            over = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if over > 0:
                _shot(page, f"overflow-{width}-{url.rstrip('/').rsplit('/', 1)[-1]}")
            assert over <= 0, f"{url} at {width} px is {over} px too wide"
            spills = page.evaluate(  # content wider than its card must scroll inside it
                """() => [...document.querySelectorAll('.card')].filter(c =>
                     c.scrollWidth > c.clientWidth + 1
                     && !['auto', 'scroll'].includes(getComputedStyle(c).overflowX))
                   .map(c => (c.querySelector('h2') || c).textContent.trim().slice(0, 40))"""
            )
            assert spills == [], f"{url} at {width} px: cards spilling over {spills}"
    page.set_viewport_size({"width": 1400, "height": 900})


def _login(browser, base: str, user):
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def test_validation_journey_to_an_open_production_gate(
    live_server, browser, eager_celery, demo_plan, analyst, approver, operator
):
    base, slug = live_server.url, demo_plan.slug
    page = _login(browser, base, analyst)
    page.goto(f"{base}/plans/{slug}/validation/")
    page.click("#run-prevalidation")
    page.wait_for_selector("text=Pre-validation ran 4 rules")
    assert page.locator("#prevalidation-results tbody tr").count() == 4
    _shot(page, "01-rules")
    run = run_create(plan=demo_plan, user=analyst, mode="load")
    page.goto(f"{base}/runs/{run.uuid}/report/")
    page.wait_for_selector("#accounting")
    assert page.locator("#checks .status-passed").count() >= 8
    assert page.locator(".verdict-pass").count() >= 1
    _shot(page, "02-report")
    MilestoneFactory(plan=demo_plan)  # its Edit / ✕ buttons must stay on the plan page
    _assert_fits(
        page, f"{base}/runs/{run.uuid}/report/", f"{base}/runs/{run.uuid}/", f"{base}/plans/{slug}/"
    )

    page = _login(browser, base, approver)
    page.goto(f"{base}/plans/{slug}/uat/?run={run.uuid}")
    forms = page.locator(".uat-form")
    forms.nth(0).locator("button").click()
    page.wait_for_selector("text=Result recorded")
    form = page.locator(".uat-form").nth(1)
    form.locator("select").select_option("fail")
    form.locator("button").click()
    page.wait_for_selector("text=needs a comment")
    _shot(page, "03-uat-refused")
    for i in (1, 2):
        page.locator(".uat-form").nth(i).locator("button").click()
        page.wait_for_selector("text=Result recorded")
    assert "3 of 3 cases have a result" in page.inner_text("#uat-coverage")
    _shot(page, "04-uat")

    prod = _pg_system("New CRM (prod)", demo_plan.target.database, "prod", "target")
    with pytest.raises(Exception, match="must be signed off"):
        run_create(plan=demo_plan, user=operator, target=prod, mode="load")
    page.goto(f"{base}/plans/{slug}/signoff/")
    page.fill("#so-reason", "Report clean, UAT passed.")
    page.click("button[value=approved]")
    page.wait_for_selector("#signoffs .status-passed:has-text('valid')")
    _shot(page, "05-signoff")
    assert SignOff.objects.get().is_valid
    production = run_create(plan=demo_plan, user=operator, target=prod, mode="load")
    page.goto(f"{base}/runs/{production.uuid}/report/")
    page.wait_for_selector("#accounting")
    _shot(page, "06-production-report")
    page.goto(f"{base}/audit/")
    assert page.locator("#audit-events tbody tr").count() > 3
    _shot(page, "07-audit")
