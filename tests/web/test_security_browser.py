"""Security-related pages in a real browser: no Test connection for a viewer, the CSP lets
every page work (htmx loaded, no console CSP error), the lock-out page, the sign-off form's
override note."""

from __future__ import annotations

import pytest
from django.conf import settings

from mappings.demo_setup import demo_install
from mappings.models import System
from tests.web.browser import chromium, log_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_security_pages_in_the_browser(live_server):
    demo_install(rows=100)
    system = System.objects.order_by("name").first()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        log_in(page, live_server.url, "viewer", settings.DEMO_PASSWORD)
        page.goto(f"{live_server.url}/systems/{system.uuid}/")
        assert page.locator("text=Test connection").count() == 0
        shot(page, "security-system-viewer")
        page = browser.new_page(viewport={"width": 1280, "height": 800})  # its own context
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        log_in(page, live_server.url, "analyst", settings.DEMO_PASSWORD)
        page.goto(f"{live_server.url}/systems/{system.uuid}/")
        page.click("text=Test connection")
        page.wait_for_selector("#test-result :text('Connected')")
        assert page.evaluate("typeof window.htmx") == "object"
        shot(page, "security-system-analyst")
        page.goto(f"{live_server.url}/plans/legacy-crm-to-new-crm/signoff/")
        assert page.locator("h1").count() == 1
        shot(page, "security-signoff")
        assert not [e for e in errors if "Content Security Policy" in e], errors

        other = browser.new_page()
        for _ in range(settings.AXES_FAILURE_LIMIT):
            log_in(other, live_server.url, "operator", "wrong-password")
        log_in(other, live_server.url, "operator", settings.DEMO_PASSWORD)
        assert "Too many failed log-ins" in other.content()
        shot(other, "security-locked-out")
