"""Reads for runs."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Run


def run_list(*, plan_slug: str | None = None, status: str | None = None) -> QuerySet[Run]:
    """Runs newest first with plan, version, target and launcher joined in."""
    qs = Run.objects.select_related("plan", "version", "target", "launched_by")
    if plan_slug:
        qs = qs.filter(plan__slug=plan_slug)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at")


def run_list_recent(*, limit: int = 10) -> list[Run]:
    """The latest ``limit`` runs."""
    return list(run_list()[:limit])
