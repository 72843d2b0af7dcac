"""Thin Celery entry points of the validation app: take ids, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="validation.run_report_build", acks_late=True, time_limit=3600)
def run_report_task(run_id: int, reason: str, requested_by: str = "the system") -> str:
    """Reconcile a run again and store its report (idempotent: replaces the previous one,
    kept in its history); ``requested_by``: who asked (a username)."""
    from runs.models import Run

    from .services import run_report_build

    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return "run gone"
    report = run_report_build(run=run, reason=reason, requested_by=requested_by)
    return f"verdict {report.verdict}"


@shared_task(name="validation.expected_part", acks_late=False, time_limit=3600)
def expected_part_task(token: str) -> str:
    """Help a report on another worker with its expected side (read-only; a helper lost or
    started late changes nothing: the report computes what it did not get)."""
    from .prefetch import expected_help

    return f"{expected_help(token)} ranges"


@shared_task(name="validation.cutover_rollback", acks_late=True, time_limit=6 * 3600)
def cutover_rollback_task(cutover_id: int, user_id: int | None) -> str:
    """Roll back every run written since the plan's last sign-off, newest first."""
    from django.contrib.auth import get_user_model

    from .cutover import cutover_rollback_execute

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    cutover = cutover_rollback_execute(cutover_id=cutover_id, user=user)
    return f"{len(cutover.rolled_back_runs)} runs rolled back"
