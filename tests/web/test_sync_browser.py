"""Browser journey of a sync run (Chromium via Playwright, real Celery worker): an operator
launches "Full load + CDC sync", watches lag, events/s and per-table counts while a separate
process writes to the source, stops it (drain & finish) and sees it finished with the slot
dropped; first, a transaction left open on the source holds up creating the slot and the page
names its pid. Screenshots: artifacts/screenshots/sync-*.png."""
# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from runs.engine.cdc.slot import slot_info
from runs.models import Run
from runs.services.cdc import slot_name
from tests.factories import PASSWORD, UserFactory
from tests.runs.conftest import (  # noqa: F401 - fixtures used as arguments
    ROOT,
    start_worker,
    sync_plan,
)
from tests.support import pg

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
SLOW = 120_000  # ms


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"sync-{name}.png"), full_page=True)


def test_sync_journey_streams_then_drains_on_stop(page, live_server, sync_plan, start_worker):
    plan, _, tgt = sync_plan
    for name in ("analyst", "operator"):
        Group.objects.get_or_create(name=name)
    lead = UserFactory(username="sync-lead", roles=["analyst", "operator"])
    start_worker(2)
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", lead.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")

    # A transaction left open on the source (it holds an xid) holds up creating the slot: the
    # launch itself returns at once, the page names the session the slot waits for.
    blocker = psycopg2.connect(**{**pg.admin_params(), "dbname": plan.source.database})
    with blocker.cursor() as cur:
        cur.execute("UPDATE src SET name = name WHERE id = 1 RETURNING pg_backend_pid()")
        pid = cur.fetchone()[0]
    page.goto(f"{base}/plans/{plan.slug}/launch/")
    page.select_option("#id_mode", "sync")
    page.click("text=Show what will happen")
    page.wait_for_selector("#launch-confirm")
    page.click("#launch-confirm button[name=confirm]")
    page.wait_for_selector("#sync-panel")
    run = Run.objects.get(plan=plan)
    shown = f"for 1 open transaction on the source server (pid {pid})"
    try:  # a session of another test left open on this server would be listed too: named here
        page.wait_for_selector(f"#cdc-slot-wait:has-text('{shown}')", timeout=SLOW)
    except PlaywrightTimeout:
        raise AssertionError(page.inner_text("#sync-panel")) from None
    _shot(page, "00-slot-waits")
    blocker.rollback()
    blocker.close()
    page.wait_for_selector("#sync-panel:has-text('streaming')", timeout=SLOW)
    assert page.locator("#cdc-slot-wait").count() == 0
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.cdc_load",
            "write",
            json.dumps(plan.source.connection_params()),
            "300",
            "5",
            "9000",
            "0.01",
        ],
        cwd=ROOT,
    )
    page.wait_for_selector("#cdc-tables td:has-text('public.src')", timeout=SLOW)
    _shot(page, "01-streaming")
    assert writer.wait(timeout=120) == 0

    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#sync-stop")
    page.wait_for_selector('#run-live[data-status="succeeded"]', timeout=SLOW)
    page.wait_for_timeout(300)
    _shot(page, "02-drained")
    run.refresh_from_db()
    assert run.cdc["phase"] == "done" and run.cdc["drained"]
    assert page.inner_text("#sync-panel").count("drained and finished") == 1
    assert slot_info(plan.source.connection_params(), slot_name(run)) is None
    source_rows = pg.query(plan.source.database, "SELECT count(*) FROM src")[0][0]
    assert pg.query(tgt, "SELECT count(*) FROM tgt")[0][0] == source_rows
