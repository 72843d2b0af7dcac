"""Browser: the launch page warns about blocking schema drift, and the drift page shows it."""
# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import sqlite3

import pytest

from mappings.services import plan_version_create
from runs.models import Run
from tests.factories import PASSWORD
from tests.runs.conftest import sqlite_demo_plan  # noqa: F401 - fixture used as an argument
from tests.web.browser import shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")


def test_launch_page_blocks_on_drift_and_drift_page_explains(
    page, live_server, sqlite_demo_plan, analyst
):
    plan, source, _ = sqlite_demo_plan
    plan_version_create(plan=plan, note="built")
    conn = sqlite3.connect(source)
    conn.execute('ALTER TABLE customers RENAME COLUMN "Legacy_Notes" TO "Notes_Legacy"')
    conn.execute("ALTER TABLE customers ADD COLUMN Loyalty_Tier TEXT")
    conn.commit()
    conn.close()
    base = live_server.url
    _login(page, base, analyst.username)
    page.goto(f"{base}/plans/{plan.slug}/launch/")
    page.click("text=Show what will happen")
    page.wait_for_selector("#drift-warning")
    warning = page.inner_text("#drift-warning")
    assert "Schema drift blocks this run" in warning
    assert "column “Legacy_Notes”: column missing, was TEXT, now missing" in warning
    assert page.locator("button[name=confirm]").count() == 0
    shot(page, "drift-launch-warning")
    page.click("text=Open the drift page")
    page.wait_for_selector("#drift-blocking")
    rows = page.locator("#drift-accounts tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert texts[0].split("\t")[:6] == [
        "blocking",
        "source",
        "customers",
        "Legacy_Notes",
        "column missing",
        "TEXT",
    ]
    assert any("Loyalty_Tier" in t and "info" in t and "nothing (not used" in t for t in texts)
    shot(page, "drift-page")
    assert Run.objects.count() == 0
