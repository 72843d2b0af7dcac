"""Run alerts: in-app notifications and e-mail when a run fails, passes its failure threshold,
finishes or is rolled back. ``install()`` registers the after-run hook (call it from
``RunsConfig.ready``); ``notification_context`` feeds the bell in the top bar."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from migration_planner.lib.roles import OPERATOR

from .enums import LogLevel, RunStatus
from .models import Notification, Run

logger = logging.getLogger(__name__)


def run_event(run: Run) -> tuple[str, str] | None:
    """(level, sentence) describing how the run ended, or None when nothing is worth saying."""
    where = f"{run.plan.name} · {run.get_mode_display()} on {run.target.name}"
    if run.status == RunStatus.FAILED and run.error.startswith("Failure threshold passed"):
        return LogLevel.ERROR, f"{where} passed its failure threshold and stopped. {run.error}"
    if run.status == RunStatus.FAILED:
        return LogLevel.ERROR, f"{where} failed: {run.error[:300]}"
    if run.status == RunStatus.SUCCEEDED:
        return LogLevel.INFO, (
            f"{where} finished: {run.loaded:,} loaded, {run.failed:,} failed, "
            f"{run.filtered:,} filtered."
        )
    if run.status == RunStatus.CANCELLED:
        return LogLevel.WARNING, f"{where} was cancelled."
    if run.status == RunStatus.ROLLED_BACK:
        verdict = run.rollbacks.values_list("status", flat=True).first() or "unknown"
        return LogLevel.WARNING, f"{where} was rolled back (verification: {verdict})."
    return None


def recipients(run: Run) -> list:
    """The launcher and every operator, active users only, each once."""
    users = {
        u.pk: u for u in get_user_model().objects.filter(groups__name=OPERATOR, is_active=True)
    }
    if run.launched_by is not None and run.launched_by.is_active:
        users[run.launched_by.pk] = run.launched_by
    return list(users.values())


def notify_after_run(run: Run) -> int:
    """After-run hook: one notification per recipient, plus an e-mail to those with an address.
    Returns how many users were notified; mail errors are logged, never raised."""
    run = Run.objects.select_related("plan", "target", "launched_by").get(pk=run.pk)
    event = run_event(run)
    if event is None:
        return 0
    level, text = event
    users = recipients(run)
    Notification.objects.bulk_create(
        [Notification(user=u, run=run, level=level, message=text[:500]) for u in users]
    )
    addresses = sorted({u.email for u in users if u.email})
    if addresses:
        link = reverse("runs:run_detail", args=[run.uuid])
        try:
            send_mail(
                f"[Migration Planner] {text[:120]}",
                f"{text}\n\nRun page: {link}\n",
                settings.DEFAULT_FROM_EMAIL,
                addresses,
            )
        except Exception:  # noqa: BLE001 - a mail outage must not disturb the run
            logger.exception("run %s: could not send the alert e-mail", run.pk)
    return len(users)


def install() -> None:
    """Register the alerts as an after-run hook (idempotent)."""
    from .services.hooks import register_after_run

    register_after_run(notify_after_run)


def notification_context(request: HttpRequest) -> dict:
    """Template context: the user's unread run notifications count (for the bell)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"notifications_unread": 0}
    return {
        "notifications_unread": Notification.objects.filter(user=user, read_at__isnull=True).count()
    }


def notifications_mark_read(*, user, ids: list[int] | None = None) -> int:
    """Mark the user's notifications (all, or the given ones) read. Returns how many."""
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())
