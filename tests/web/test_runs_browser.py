"""Browser journey through the runs console (Chromium via Playwright, real Celery worker).

A migration lead launches the demo dry run, watches it finish live, opens the top error, fixes
a record and re-processes it, launches a load run, rolls it back and sees the verification.
The live server runs in a thread; batches and the rollback run in a real `celery worker`
process (start_worker) on the same test database and broker. Screenshots of every screen go
to artifacts/screenshots/runs-*.png.
"""
# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from runs.models import FailedRecord, Rollback, Run
from tests.factories import PASSWORD, UserFactory
from tests.runs.conftest import (  # noqa: F401 - fixtures used as arguments
    demo_plan,
    demo_source_db,
    demo_target_db,
    start_worker,
)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
SLOW = 120_000  # ms: a run or rollback on a loaded CI box


@pytest.fixture
def lead(db):
    for name in ("analyst", "operator"):
        Group.objects.get_or_create(name=name)
    return UserFactory(username="lead-web", roles=["analyst", "operator"])


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"runs-{name}.png"), full_page=True)


def _login(page, base: str, user) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")


def _launch(page, base: str, plan, mode: str, shot: str) -> Run:
    before = set(Run.objects.values_list("pk", flat=True))
    page.goto(f"{base}/plans/{plan.slug}/launch/")
    page.select_option("#id_mode", mode)
    page.click("text=Show what will happen")
    page.wait_for_selector("#launch-confirm")
    _shot(page, shot)
    page.click("#launch-confirm button[name=confirm]")
    page.wait_for_selector("#run-live")
    return Run.objects.exclude(pk__in=before).get()


def _wait_finished(page, status: str = "succeeded") -> None:
    page.wait_for_selector(f'#run-live[data-status="{status}"]', timeout=SLOW)


def test_runs_console_journey(page, live_server, lead, demo_plan, start_worker):
    start_worker(2)
    base = live_server.url
    _login(page, base, lead)

    dry = _launch(page, base, demo_plan, "dry_run", "01-launch-confirm")
    _shot(page, "02-run-live")
    _wait_finished(page)
    page.wait_for_timeout(300)
    _shot(page, "03-dry-run-finished")
    open_before = FailedRecord.objects.filter(run=dry, status="open").count()
    assert page.inner_text("#open-errors b") == f"{open_before:,}"

    page.click("#open-errors")
    page.wait_for_selector("#top-errors table")
    _shot(page, "04-error-queue")
    page.click("#top-errors a:has-text('Show these') >> nth=0")
    page.wait_for_selector("#top-errors table")
    _shot(page, "05-top-error-filtered")

    record = next(
        r
        for r in FailedRecord.objects.filter(run=dry, field="email", status="open")
        if len(r.errors) == 1
    )
    long_value = FailedRecord.objects.filter(run=dry, status="open").exclude(pk=record.pk)[0]
    long_value.source_row = {**long_value.source_row, "Legacy_Notes": "x" * 160}
    long_value.save(update_fields=["source_row"])
    page.goto(f"{base}/errors/{long_value.uuid}/")
    _shot(page, "06a-failed-record-long-value")
    # a 160-character unbroken value wraps inside its cell: both panels stay on the page
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator("text=Transformed row").bounding_box()["x"] < page.viewport_size["width"]
    page.goto(f"{base}/errors/{record.uuid}/")
    _shot(page, "06-failed-record")
    page.fill('input[name="v:Email_Address"]', "fixed.by.lead@example.com")
    page.click("text=Save and re-process")
    page.wait_for_selector(".msg-success:has-text('Passed and closed')")
    _shot(page, "07-record-reprocessed")
    record.refresh_from_db()
    assert record.status == "reprocessed"
    page.goto(f"{base}/runs/{dry.uuid}/errors/")
    assert page.inner_text("#open-count") == f"{open_before - 1:,}"

    load = _launch(page, base, demo_plan, "load", "08-launch-load-confirm")
    _wait_finished(page)
    _shot(page, "09-load-finished")
    page.click("text=Roll back…")
    page.wait_for_selector("text=Roll back this run?")
    _shot(page, "10-rollback-confirm")
    page.check("#id_confirm")
    page.fill("#id_reason", "rehearsal finished")
    page.click("text=Roll back now")
    page.wait_for_selector('#rollback-status[data-status="verified"]', timeout=SLOW)
    _shot(page, "11-rollback-verified")
    assert Rollback.objects.get(run=load).status == "verified"

    page.goto(f"{base}/runs/{load.uuid}/")
    _shot(page, "12-run-rolled-back")
    for width in (1024, 1440):  # REVIEW9 J2-3: the entities table lost its last columns
        page.set_viewport_size({"width": width, "height": 900})
        clipped = page.eval_on_selector(
            "table.entity-progress",
            "t => t.getBoundingClientRect().right"
            " - t.closest('section').getBoundingClientRect().right",
        )
        _shot(page, f"12b-run-page-{width}")
        assert clipped <= 1, (width, clipped)
    page.goto(f"{base}/runs/")
    _shot(page, "13-run-list")
    page.goto(f"{base}/runs/compare/?a={dry.uuid}&b={load.uuid}")
    _shot(page, "14-compare")
    assert page.locator("table.compare").count() == 2
