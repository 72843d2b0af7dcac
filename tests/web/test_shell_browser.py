"""The UI shell in a real browser: login page, dashboard with the demo plan, assets local."""

from __future__ import annotations

import pytest
from django.conf import settings

from mappings.demo_setup import demo_install
from tests.web.browser import chromium, log_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_analyst_logs_in_and_sees_the_demo_plan(live_server):
    demo_install(rows=100)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        external = []
        page.on(
            "request",
            lambda r: external.append(r.url) if not r.url.startswith(live_server.url) else None,
        )
        page.goto(f"{live_server.url}/")
        assert page.url.startswith(f"{live_server.url}/accounts/login/")
        shot(page, "shell-login")
        log_in(page, live_server.url, "analyst", settings.DEMO_PASSWORD)
        assert page.url == f"{live_server.url}/"
        assert page.locator("h1").inner_text() == "Dashboard"
        assert page.locator("text=Legacy CRM → New CRM").count() == 1
        assert page.locator(".role-analyst").inner_text() == "analyst"
        # htmx is served from our static files and loaded
        assert page.evaluate("typeof window.htmx") == "object"
        shot(page, "shell-dashboard")
        page.click("text=Legacy CRM → New CRM")
        page.wait_for_load_state("networkidle")
        assert "customers → accounts" in page.content()
        shot(page, "shell-plan")
        assert external == []


def test_wrong_password_shows_message(live_server):
    demo_install(rows=100)
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, live_server.url, "analyst", "wrong-password")
        assert "didn't match" in page.locator("[role=alert]").inner_text()
        shot(page, "shell-login-error")
