"""Browser view of a sign-off whose run was rolled back since (Chromium via Playwright): the
sign-off history keeps its frozen verdict and says "run #N rolled back since (rollback #M by U
at T)" beside it; the sign-off stays valid.
Screenshot: artifacts/screenshots/signoff-rolled-back.png."""
# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import pytest

from runs.enums import RollbackStatus, RunStatus
from runs.services import run_create, run_rollback_request
from runs.services.rollback import run_rollback_execute
from tests.factories import PASSWORD
from tests.runs.conftest import (  # noqa: F401 - fixtures used as arguments
    demo_plan,
    demo_source_db,
    demo_target_db,
    eager_celery,
)
from tests.web.browser import log_in, shot
from validation.signoff import signoff_decide

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_signoff_history_says_its_run_was_rolled_back_since(
    page, live_server, demo_plan, eager_celery, operator, approver
):
    run = run_create(plan=demo_plan, user=operator, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    signed = signoff_decide(
        plan=demo_plan, version=run.version, run=run, user=approver, decision="approved"
    )
    rollback = run_rollback_request(run=run, user=operator, enqueue=False)
    assert run_rollback_execute(rollback_id=rollback.pk).status == RollbackStatus.VERIFIED
    rollback.refresh_from_db()
    base = live_server.url
    log_in(page, base, approver.username, PASSWORD)

    page.goto(f"{base}/plans/{demo_plan.slug}/signoff/")
    row = page.locator("#signoffs tbody tr").first
    cell = row.inner_text()
    assert f"verdict {signed.report_snapshot['verdict']}" in cell  # the frozen verdict, kept
    note = row.locator(".rolled-back-since").inner_text()
    assert note == (
        f"⟲ run #{run.pk} rolled back since (rollback #{rollback.pk} by {operator.username} "
        f"at {rollback.started_at:%Y-%m-%d %H:%M})"
    )
    assert "valid" in cell  # not voided by the rollback
    shot(page, "signoff-rolled-back")
