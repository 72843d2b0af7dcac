"""Plan history, versions, diff and revert."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required

from ..models import PlanVersion, System
from ..selectors import plan_history
from ..services import plan_current_dict, plan_version_create
from ..services_drift import plan_version_drift
from ..services_versions import plan_version_revert, snapshot_diff
from ._common import EDIT, can_edit, plan_or_404


@capability_required("mp.view")
def plan_history_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    versions = plan.versions.select_related("created_by").order_by("-number")
    return render(
        request,
        "mappings/plan_history.html",
        {
            "plan": plan,
            "versions": versions,
            "history": plan_history(plan=plan),
            "can_edit": can_edit(request),
        },
    )


@require_POST
@capability_required(EDIT)
def version_create_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    try:
        version = plan_version_create(
            plan=plan, user=request.user, note=request.POST.get("note", "")[:255]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Version {version.number} saved (hash {version.content_hash[:10]})."
        )
    return redirect("mappings:plan_history", slug=slug)


@capability_required("mp.view")
def version_diff_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    a = get_object_or_404(PlanVersion, plan=plan, number=request.GET.get("a") or 0)
    b = get_object_or_404(PlanVersion, plan=plan, number=request.GET.get("b") or 0)
    return render(
        request,
        "mappings/version_diff.html",
        {"plan": plan, "a": a, "b": b, "changes": snapshot_diff(a.snapshot, b.snapshot)},
    )


@capability_required(EDIT)
def version_revert_view(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """GET: what reverting would change (a confirmation page); POST: revert."""
    plan = plan_or_404(slug)
    version = get_object_or_404(PlanVersion, plan=plan, number=number)
    if request.method != "POST":
        try:
            current, error = plan_current_dict(plan=plan), ""
        except ApplicationError as exc:
            current, error = {}, exc.message
        return render(
            request,
            "mappings/version_revert.html",
            {
                "plan": plan,
                "version": version,
                "error": error,
                "changes": snapshot_diff(current, version.snapshot),
                "complete": "_document" in version.snapshot,
            },
        )
    try:
        plan_version_revert(plan=plan, version=version, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Plan reverted to version {number}.")
    return redirect("mappings:plan_history", slug=slug)


@capability_required("mp.view")
def plan_drift_view(request: HttpRequest, slug: str, number: int | None = None) -> HttpResponse:
    plan = plan_or_404(slug)
    versions = plan.versions.order_by("-number")
    version = (
        get_object_or_404(PlanVersion, plan=plan, number=number)
        if number is not None
        else versions.first()
    )
    target = plan.target
    if request.GET.get("target"):
        target = get_object_or_404(System, name=request.GET["target"])
    report, error = None, ""
    if version is not None:
        try:
            report = plan_version_drift(version=version, target=target)
        except ApplicationError as exc:
            error = exc.message
    return render(
        request,
        "mappings/plan_drift.html",
        {
            "plan": plan,
            "version": version,
            "versions": versions[:20],
            "target": target,
            "report": report,
            "error": error,
            "can_edit": can_edit(request),
        },
    )


@require_POST
@capability_required(EDIT)
def plan_rebaseline_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    try:
        version = plan_version_create(
            plan=plan,
            user=request.user,
            rebaseline=True,
            note="built against the live schema after drift review",
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("mappings:plan_drift", slug=slug)
    messages.success(request, f"Version {version.number} saved against the live schema.")
    return redirect("mappings:plan_version_drift", slug=slug, number=version.number)
