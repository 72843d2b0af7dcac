"""Browser journey of a cutover (Chromium via Playwright): an operator opens the cutover page
of a signed-off plan, sees the checklist refuse go, confirms the freeze, the final delta runs,
the checklist turns green, goes live and sees the measured downtime; the go / no-go is in the
audit log. Screenshots: artifacts/screenshots/cutover-*.png."""
# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runs.enums import RunStatus
from runs.services import run_create
from tests.factories import PASSWORD
from tests.runs.conftest import eager_celery, sync_plan  # noqa: F401
from tests.support import pg
from validation.models import AuditEvent, Cutover
from validation.signoff import signoff_decide

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"cutover-{name}.png"), full_page=True)


def test_cutover_journey_freeze_drain_go(
    page, live_server, sync_plan, eager_celery, operator, approver
):
    plan, src, _ = sync_plan
    load = run_create(plan=plan, user=operator, mode="load")
    load.refresh_from_db()
    signoff_decide(plan=plan, version=load.version, run=load, user=approver, decision="approved")
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/plans/{plan.slug}/")
    page.click("a:has-text('Cutover')")
    page.click("#cutover-open")
    page.wait_for_selector("#cutover-checklist")
    page.click("#cutover-go")
    page.wait_for_selector(".msg-error:has-text('Go refused')")
    _shot(page, "01-go-refused")
    page.click("#cutover-freeze")
    page.wait_for_selector('[data-check="freeze"][data-ok="yes"]')
    pg.query(src, "DELETE FROM src WHERE id > 398")
    delta = run_create(plan=plan, user=operator, mode="delta")
    delta.refresh_from_db()
    assert delta.status == RunStatus.SUCCEEDED and delta.deleted == 2
    page.reload()
    page.wait_for_selector('[data-check="signoff"][data-ok="yes"]')
    assert page.locator('[data-ok="no"]').count() == 0
    _shot(page, "02-checklist-green")
    page.click("#cutover-go")
    page.wait_for_selector("#cutover-downtime")
    _shot(page, "03-live")
    cutover = Cutover.objects.get(plan=plan)
    assert cutover.status == "go"
    assert page.inner_text("#cutover-downtime").startswith(f"{cutover.downtime_seconds} s")
    assert AuditEvent.objects.filter(action="cutover", after__decision="go").count() == 1
    page.goto(f"{base}/audit/")
    _shot(page, "04-audit")
