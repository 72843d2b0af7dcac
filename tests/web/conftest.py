"""Browser-test fixtures: one headless Chromium page per test (see tests/web/browser.py)."""

from __future__ import annotations

import pytest

from tests.web.browser import chromium, chromium_close


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The shared Chromium ends with the session."""
    chromium_close()


@pytest.fixture
def page():
    """A 1400x900 page in Debian's headless Chromium, closed after the test."""
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        yield context.new_page()
