"""Headless Chromium (Debian's) driven by Playwright, and screenshots kept as artifacts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("PLAYWRIGHT_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright + live_server


_SHARED: dict[str, Any] = {}


def _browser() -> Browser:
    """The session's one Chromium process (Playwright and Chromium start once: ~1-2 s of CPU
    a browser test saved); launched again if it died."""
    browser = _SHARED.get("browser")
    if browser is None or not browser.is_connected():
        chromium_close()
        _SHARED["playwright"] = sync_playwright().start()
        _SHARED["browser"] = _SHARED["playwright"].chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
    return _SHARED["browser"]


def chromium_close() -> None:
    """Stop the shared Chromium and Playwright (end of the session)."""
    browser, playwright = _SHARED.pop("browser", None), _SHARED.pop("playwright", None)
    if browser is not None and browser.is_connected():
        browser.close()
    if playwright is not None:
        playwright.stop()


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test: every context (cookies, storage, cache) the test
    opens is closed afterwards, so each test starts as in a new browser; the process itself
    is the session's (chromium_close)."""
    browser = _browser()
    before = set(browser.contexts)
    try:
        yield browser
    finally:
        for context in browser.contexts:
            if context not in before:
                context.close()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under artifacts/screenshots/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Log in through the login form."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
