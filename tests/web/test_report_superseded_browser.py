"""Browser view of a report superseded by a rollback (Chromium via Playwright): the run page
and the report page of a rolled-back run say "superseded by rollback of run #N", who asked and
when, and show the earlier figures as history, with no pass anywhere (each check's status
reads "passed (before the rollback)", muted); a report attempt the
rollback cancelled is listed. A report replaced by a newer one is listed under "Earlier reports
of this run". Screenshots: artifacts/screenshots/report-superseded-*.png, report-history-*.png."""
# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import pytest

from runs.enums import RunStatus
from runs.services import run_create, run_rollback_request
from tests.factories import PASSWORD
from tests.runs.conftest import (  # noqa: F401 - fixtures used as arguments
    demo_plan,
    demo_source_db,
    demo_target_db,
    eager_celery,
)
from tests.web.browser import log_in, shot
from validation.report_build import run_report_build

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_superseded_report_on_the_run_and_report_pages(
    page, live_server, demo_plan, eager_celery, operator
):
    run = run_create(plan=demo_plan, user=operator, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    run_rollback_request(run=run, user=operator, enqueue=False)
    run_report_build(run=run, reason="on demand by the test")  # cancelled: kept beside it
    base = live_server.url
    log_in(page, base, operator.username, PASSWORD)

    page.goto(f"{base}{run.get_absolute_url()}")
    badge = page.locator(".verdict-superseded").first
    assert badge.inner_text() == "⟲ superseded"
    shot(page, "report-superseded-01-run")
    badge.click()
    page.wait_for_selector("#report-superseded")
    banner = page.inner_text("#report-superseded")
    assert banner.startswith(f"Superseded by rollback of run #{run.pk}, requested by ")
    assert operator.username in banner
    assert "on demand by the test: cancelled" in page.inner_text("#report-attempts")
    assert page.locator(".verdict-pass, .verdict-warn").count() == 0
    # no check, balance or key diff looks like a live pass: each status is shown as history
    assert page.locator(".status-passed").count() == 0
    statuses = page.locator("#checks .status").all_inner_texts()
    assert statuses and all(s.endswith(" (before the rollback)") for s in statuses), statuses
    assert "passed (before the rollback)" in statuses
    history = page.locator("#checks .status-history").first
    assert history.evaluate("e => getComputedStyle(e).color") == page.locator(
        ".verdict-superseded"
    ).first.evaluate("e => getComputedStyle(e).color")  # muted, as the superseded badge
    assert page.locator("#accounting .status-history").count() == 3
    assert page.locator("#key-diffs .status-history").count() == 3
    shot(page, "report-superseded-02-report")


def test_a_report_replaced_by_a_newer_one_is_listed_as_history(
    page, live_server, demo_plan, eager_celery, operator
):
    run = run_create(plan=demo_plan, user=operator, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    run_report_build(run=run, reason="on demand by the test", requested_by=operator.username)
    base = live_server.url
    log_in(page, base, operator.username, PASSWORD)

    page.goto(f"{base}/runs/{run.uuid}/report/")
    rows = page.locator("#report-history tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[1] in ("pass", "warn") and cells[2] == "after the run"
    assert cells[3] == "the system" and cells[4].endswith("on demand by the test")
    live = page.locator("#report-history .status-passed, #report-history .verdict-pass")
    assert live.count() == 0
    shot(page, "report-history-01-replaced")
