"""REVIEW9 rollback pages: "Roll back all runs, newest first" lands on a page that says what
happens (J2-1); the confirmation and the result agree on the batches (J2-8). Real PostgreSQL
target; runs inline, the chained rollback left queued (no worker) where the test needs it."""

from __future__ import annotations

import pytest
from celery import current_app
from django.urls import reverse

from runs.enums import RollbackStatus, RunStatus
from runs.models import Rollback, Run
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _load(plan, user=None) -> Run:
    from runs.services import run_create

    run = run_create(plan=plan, user=user, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_rolling_back_all_runs_lands_on_a_page_that_waits_for_the_newest_first(
    eager_celery, demo_plan, demo_target_db, analyst, operator, client_for
):
    first = _load(demo_plan, analyst)
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Changed by hand' WHERE id % 5 = 0")
    second = _load(demo_plan, analyst)
    current_app.conf.task_always_eager = False  # no worker: the first rollback stays queued
    client = client_for(operator)
    response = client.post(
        reverse("runs:rollback", args=[first.uuid]),
        {"reason": "undo", "confirm": "on", "with_later_runs": "on"},
        follow=True,
    )
    assert response.status_code == 200, response.content.decode()[:500]
    page = response.content.decode()
    assert "Waiting: later runs are rolled back first" in page and f"Run #{second.pk} (" in page
    assert reverse("runs:rollback_progress", args=[second.uuid]) in page
    status = client.get(reverse("runs:rollback_status", args=[first.uuid]))
    assert status.status_code == 200  # keeps polling while the chain runs
    head = client.get(reverse("runs:rollback_progress", args=[second.uuid])).content.decode()
    assert f"run #{first.pk}" in head  # the newest run's page names what comes next
    # the chain stopped (the newest run's rollback ended in a mismatch): say so, stop polling
    Rollback.objects.filter(run=second).update(status=RollbackStatus.MISMATCH)
    status = client.get(reverse("runs:rollback_status", args=[first.uuid]))
    assert status.status_code == 286
    assert "The stack stopped there" in status.content.decode()


def test_a_run_nobody_rolled_back_still_has_no_progress_page(
    eager_celery, demo_plan, operator, client_for
):
    run = _load(demo_plan)
    response = client_for(operator).get(reverse("runs:rollback_progress", args=[run.uuid]))
    assert response.status_code == 404


def test_rollback_of_a_run_that_rewrote_no_row_says_nothing_to_undo_before_and_after(
    eager_celery, demo_plan, operator, client_for
):
    _load(demo_plan)
    again = _load(demo_plan)  # every loaded row unchanged: its batches rewrote no row
    assert (again.inserted, again.updated) == (0, 0) and again.unchanged > 0
    batches = again.batches.filter(status="done").count()
    client = client_for(operator)
    url = reverse("runs:rollback", args=[again.uuid])
    confirm = client.get(url).content.decode()
    assert "The ledger holds no committed batch" not in confirm
    assert f"{batches} batches, nothing to undo (they rewrote no row" in confirm
    response = client.post(url, {"reason": "undo", "confirm": "on"}, follow=True)
    result = response.content.decode()
    rollback = Rollback.objects.get(run=again)
    assert rollback.status == RollbackStatus.VERIFIED
    assert (rollback.rows_deleted, rollback.rows_restored, rollback.batches_undone) == (
        0,
        0,
        batches,
    )
    assert "batches undone" not in result
    assert (
        f"{rollback.batches_undone}</b><small>batches, nothing to undo (they rewrote no row)"
        in result
    )
