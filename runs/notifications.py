"""Run alerts: in-app notifications and e-mail when a run fails, passes its failure threshold,
finishes (saying when its reconciliation failed), is rolled back or stalls. ``install()``
registers the after-run hook (call it from ``RunsConfig.ready``); ``notification_context``
feeds the bell in the top bar. E-mail subjects are one line; links are absolute
(``MP_BASE_URL``)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from migration_planner.lib.roles import OPERATOR

from .enums import LogLevel, RunMode, RunStatus
from .models import Notification, Run

logger = logging.getLogger(__name__)


def _where(run: Run) -> str:
    return f"{run.plan.name} · {run.get_mode_display()} on {run.target.name}"


def _reconciliation(run: Run) -> str | None:
    """ "fail" / "pass" / "warn" for a reconciled run, "missing" when a load/delta run that
    wrote batches has no report (reconciliation crashed), None when none is expected."""
    if run.mode == RunMode.DRY_RUN or run.status != RunStatus.SUCCEEDED:
        return None
    from .services.hooks import run_verdict

    verdict = run_verdict(run)
    if verdict is None and run.batches.exists():
        return "missing"
    return verdict


def run_event(run: Run) -> tuple[str, str] | None:
    """(level, sentence) describing how the run ended, or None when nothing is worth saying."""
    where = _where(run)
    if run.status == RunStatus.FAILED and run.error.startswith("Failure threshold passed"):
        return LogLevel.ERROR, f"{where} passed its failure threshold and stopped. {run.error}"
    if run.status == RunStatus.FAILED:
        return LogLevel.ERROR, f"{where} failed: {run.error[:300]}"
    verdict = _reconciliation(run)
    if verdict == "fail":
        return LogLevel.ERROR, (
            f"{where} loaded {run.loaded:,} rows but its reconciliation FAILED: see the report."
        )
    if verdict == "missing":
        return LogLevel.ERROR, (
            f"{where} loaded {run.loaded:,} rows but its reconciliation could not be completed "
            "(see the run log)."
        )
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


def run_link(run: Run) -> str:
    """Absolute URL of the run page (``MP_BASE_URL`` + path)."""
    return settings.MP_BASE_URL + reverse("runs:run_detail", args=[run.uuid])


def mail_subject(text: str) -> str:
    """A one-line e-mail subject (newlines would make Django refuse the whole mail)."""
    line = " ".join(text.split())
    return f"[Migration Planner] {line[:120]}"


def _alert(run: Run, level: str, text: str) -> int:
    """Notify the launcher and operators in-app and by e-mail; mail errors are logged."""
    users = recipients(run)
    Notification.objects.bulk_create(
        [Notification(user=u, run=run, level=level, message=text[:500]) for u in users]
    )
    addresses = sorted({u.email for u in users if u.email})
    if addresses:
        try:
            send_mail(
                mail_subject(text),
                f"{text}\n\nRun page: {run_link(run)}\n",
                settings.DEFAULT_FROM_EMAIL,
                addresses,
            )
        except Exception:  # noqa: BLE001 - a mail outage must not disturb the run
            logger.exception("run %s: could not send the alert e-mail", run.pk)
    return len(users)


def notify_after_run(run: Run) -> int:
    """After-run hook: one notification per recipient, plus an e-mail to those with an address.
    Returns how many users were notified; mail errors are logged, never raised."""
    run = Run.objects.select_related("plan", "target", "launched_by").get(pk=run.pk)
    event = run_event(run)
    if event is None:
        return 0
    return _alert(run, *event)


def notify_run_stalled(run: Run, *, idle_seconds: int) -> int:
    """Alert that no worker has taken one of the run's batches (a sync run: driven the sync)
    for ``idle_seconds``."""
    run = Run.objects.select_related("plan", "target", "launched_by").get(pk=run.pk)
    what = "driven the sync" if run.mode == "sync" else "taken a batch"
    text = (
        f"{_where(run)} is stalled: no worker has {what} for {idle_seconds} s. "
        "Check that a Celery worker is running (see /healthz)."
    )
    return _alert(run, LogLevel.ERROR, text)


def install() -> None:
    """Register the alerts as an after-run hook (idempotent)."""
    from .services.hooks import register_after_run

    register_after_run(notify_after_run, late=True)


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
