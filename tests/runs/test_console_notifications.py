"""Run alerts: in-app notifications and e-mail to the launcher and the operators."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from runs.models import Notification
from runs.notifications import install, notification_context
from runs.services import run_create, run_rollback_request
from runs.services.hooks import AFTER_RUN_LATE

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def alerts():
    """The alerts hook installed (twice: idempotent); the hooks as they were afterwards. The
    app installs it at start-up, so removing it here took it away from every later test
    (test_rerun_report's alert assertions failed after this file in the same process)."""
    before = list(AFTER_RUN_LATE)
    install()
    install()  # idempotent
    from runs.notifications import notify_after_run

    assert AFTER_RUN_LATE.count(notify_after_run) == 1
    yield
    AFTER_RUN_LATE[:] = before


def test_finished_and_rolled_back_runs_notify_launcher_and_operators(
    alerts, analyst, operator, viewer, demo_plan, eager_celery, mailoutbox
):
    analyst.email, operator.email = "ana@example.com", "opal@example.com"
    analyst.save()
    operator.save()
    run = run_create(plan=demo_plan, user=analyst, mode="load")
    run_rollback_request(run=run, user=operator)
    notes = list(Notification.objects.order_by("id").values_list("user__username", "message"))
    assert sorted(u for u, _ in notes) == ["ana", "ana", "opal", "opal"]
    assert "finished" in notes[0][1] and "rolled back (verification: verified)" in notes[-1][1]
    assert [sorted(m.to) for m in mailoutbox] == [["ana@example.com", "opal@example.com"]] * 2
    assert not Notification.objects.filter(user=viewer).exists()


def test_threshold_failure_is_announced(alerts, analyst, demo_plan, eager_celery):
    demo_plan.failure_threshold_pct = 1
    demo_plan.save()
    run_create(plan=demo_plan, user=analyst, mode="load")
    note = Notification.objects.get(user=analyst)
    assert (note.level, "passed its failure threshold" in note.message) == ("error", True)


def test_bell_context_counts_unread(alerts, analyst, demo_plan, eager_celery, client_for):
    run_create(plan=demo_plan, user=analyst, mode="dry_run")
    request = RequestFactory().get("/")
    request.user = analyst
    assert notification_context(request) == {"notifications_unread": 1}
    client_for(analyst).post("/notifications/read/")
    assert notification_context(request) == {"notifications_unread": 0}
