"""Launching a run from a plan: choose target and mode, confirm what will happen, launch."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from mappings.models import Plan
from mappings.services_drift import plan_launch_drift
from migration_planner.lib.errors import ApplicationError, ConflictError, PermissionDeniedError
from migration_planner.lib.roles import refusal_text
from runs.engine.errors import EngineError
from runs.enums import RunMode
from runs.forms import LaunchForm
from runs.selectors import launch_preview
from runs.services import run_create, table_leases_for

from .common import capability

LAUNCH_DENIED = refusal_text("mp.launch_run")


def _plan(slug: str) -> Plan:
    try:
        return Plan.objects.select_related("source", "target").get(slug=slug)
    except Plan.DoesNotExist as exc:
        raise Http404("No such plan.") from exc


def _preview(request: HttpRequest, plan: Plan, form: LaunchForm) -> dict:
    data = form.cleaned_data
    try:
        preview = launch_preview(
            plan=plan,
            target=data["target"],
            mode=data["mode"],
            scope_entity=data.get("scope_entity") or "",
        )
    except (ApplicationError, EngineError) as exc:
        return {"preview_error": str(getattr(exc, "message", exc))}
    mode_label = RunMode(data["mode"]).label
    if preview.production and not request.user.has_perm("mp.launch_production_run"):
        preview.refusal = "Only an operator may launch a run on a production target."
    try:
        drift = plan_launch_drift(
            plan=plan, target=data["target"], scope_entity=data.get("scope_entity") or ""
        )
    except ApplicationError as exc:
        return {"preview_error": exc.message}
    if data["mode"] != RunMode.DRY_RUN and not preview.refusal:
        # a writing run needs its tables' leases: say now who holds one (dry runs need none)
        tables = {e["target_table"] for e in preview.entities}
        held = table_leases_for(target=data["target"], tables=tables)
        if held:
            preview.refusal = (
                f"{held[0].description}. The launch would be refused until that run ends; "
                "launch it again then."
            )
    return {"preview": preview, "mode_label": mode_label, "drift": drift}


@capability("mp.launch_run", LAUNCH_DENIED)
def run_launch_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = _plan(slug)
    form = LaunchForm(request.POST or None, plan=plan)
    context = {
        "plan": plan,
        "form": form,
        "signoff_url": f"/plans/{plan.slug}/signoff/",
        "leases": table_leases_for(target=plan.target),
    }
    if request.method != "POST" or not form.is_valid():
        return render(request, "runs/launch.html", context)
    if "confirm" not in request.POST:
        return render(request, "runs/launch.html", context | _preview(request, plan, form))
    data = form.cleaned_data
    try:
        run = run_create(
            plan=plan,
            user=request.user,
            target=data["target"],
            mode=data["mode"],
            scope_entity=data.get("scope_entity") or "",
        )
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from exc
    except ApplicationError as exc:
        context |= {
            "launch_error": exc.message,
            "drift_refused": bool(exc.extra.get("drift")),
            "signoff_required": bool(exc.extra.get("signoff_required")),
        }
        code = 409 if isinstance(exc, ConflictError) else 400
        return render(request, "runs/launch.html", context, status=code)
    return redirect(run)
