"""API tokens in a real browser (issue 18): the user menu's "API tokens" page creates a token
shown once, the API accepts it, the list shows when it was last used, Revoke (after a
confirmation) stops it."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.factories import PASSWORD, UserFactory
from tests.web.browser import chromium, log_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _api_status(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - test URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_api_token_page_create_use_revoke(live_server):
    UserFactory(username="tess", roles=["analyst"])
    api = f"{live_server.url}/api/plans/"
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        page = context.new_page()
        log_in(page, live_server.url, "tess", PASSWORD)
        page.click("header .who >> text=API tokens")
        page.wait_for_selector("h1:has-text('API tokens')")
        shot(page, "tokens-empty")
        page.fill("#id_token_name", "CI pipeline")
        page.click("text=Create token")
        page.wait_for_selector("#new-token-value")
        key = page.inner_text("#new-token-value").strip()
        assert key.startswith("mpat_") and len(key) > 40
        assert "will not be shown again" in page.inner_text("#new-token")
        shot(page, "tokens-created-shown-once")
        page.click("#new-token button:has-text('Copy')")
        page.wait_for_selector("#new-token button:has-text('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == key

        page.reload()  # POST/redirect/GET: a refresh neither re-submits nor shows it again
        page.wait_for_selector("h1:has-text('API tokens')")
        assert key not in page.content() and "already have an active token" not in page.content()
        assert page.locator("#tokens tbody tr", has_text="CI pipeline").count() == 1

        assert _api_status(api, key) == 200
        page.goto(f"{live_server.url}/account/tokens/")
        assert key not in page.content()
        row = page.locator("#tokens tbody tr", has_text="CI pipeline")
        assert "active" in row.inner_text() and "never" not in row.inner_text()
        shot(page, "tokens-listed-last-used")

        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("text=Revoke").click()
        page.wait_for_selector("text=revoked: it no longer works")
        assert "revoked" in page.locator("#tokens tbody tr", has_text="CI pipeline").inner_text()
        shot(page, "tokens-revoked")
        assert _api_status(api, key) == 401
