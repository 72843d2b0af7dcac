"""Run pages: the list with filters, the live run page and its polled partial, controls,
and the comparison of two runs."""

from __future__ import annotations

import uuid as uuid_module

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.roles import refusal_text
from migration_planner.lib.views import capability_required
from runs.forms import RunFilterForm
from runs.models import Run
from runs.selectors import (
    run_batches,
    run_compare,
    run_get,
    run_idle_seconds,
    run_is_active,
    run_list,
    run_logs,
    run_progress,
    run_rollbacks,
    worker_list,
)
from runs.services import run_cancel, run_pause, run_resume, sync_stop, table_leases_for
from runs.services.rollback_order import run_tables
from runs.threshold import run_threshold_breach, run_threshold_clear

from .common import STOP_POLLING, capability, refuse

CONTROLS = {"pause": run_pause, "resume": run_resume, "cancel": run_cancel, "stop": sync_stop}


@capability_required("mp.view")
def run_list_view(request: HttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    runs = run_list(
        plan_slug=filters.get("plan") or None,
        status=filters.get("status") or None,
        target=filters.get("target") or None,
        launched_by=filters.get("launched_by") or None,
    )[:200]
    return render(request, "runs/run_list.html", {"runs": runs, "form": form})


def _get_run(uuid) -> Run:
    try:
        return run_get(uuid=uuid)
    except Run.DoesNotExist as exc:
        raise Http404("No such run.") from exc


def _live_context(run: Run, error: str = "") -> dict:
    active = run_is_active(run)
    workers = worker_list() if active else []
    return {
        "run": run,
        "progress": run_progress(run),
        "batches": run_batches(run),
        "logs": run_logs(run),
        "active": active,
        "error": error,
        "would_abort": run_threshold_breach(run),
        "would_go_through": run_threshold_clear(run),
        "idle_s": run_idle_seconds(run),
        "workers": workers,
        "live_workers": any(w.live for w in workers),
        # A wait shorter than one batch lease is normal between batches and phases.
        "stall_notice_s": int(settings.MP_BATCH_LEASE_SECONDS),
        # refreshed with the partial; an ended run's own leases are on their way out
        "leases": [
            lease
            for lease in table_leases_for(target=run.target, tables=run_tables(run))
            if active or lease.run_id != run.pk
        ],
    }


@capability_required("mp.view")
def run_detail_view(request: HttpRequest, uuid) -> HttpResponse:
    run = _get_run(uuid)
    context = _live_context(run) | {"rollbacks": run_rollbacks(run)}
    return render(request, "runs/run_detail.html", context)


@capability_required("mp.view")
def run_live_view(request: HttpRequest, uuid) -> HttpResponse:
    """The polled partial: 200 while the run may change, 286 (stop polling) once it ended."""
    run = _get_run(uuid)
    context = _live_context(run)
    status = 200 if context["active"] else STOP_POLLING
    return render(request, "runs/partials/_run_live.html", context, status=status)


@require_POST
@capability("mp.control_run", refusal_text("mp.control_run"))
def run_control_view(request: HttpRequest, uuid, action: str) -> HttpResponse:
    run = _get_run(uuid)
    if action not in CONTROLS:
        raise Http404("No such action.")
    error = ""
    try:
        CONTROLS[action](run=run, user=request.user)
    except ApplicationError as exc:
        response = refuse(request, exc)
        if response is not None:
            return response
        error = exc.message
    if not request.htmx:
        return redirect(run)
    run = _get_run(uuid)
    return render(request, "runs/partials/_run_live.html", _live_context(run, error))


@capability_required("mp.view")
def run_compare_view(request: HttpRequest) -> HttpResponse:
    try:
        ids = [uuid_module.UUID(request.GET.get(k, "")) for k in ("a", "b")]
    except ValueError as exc:
        raise Http404("Choose two runs to compare.") from exc
    a, b = (_get_run(i) for i in ids)
    return render(request, "runs/run_compare.html", {"a": a, "b": b, **run_compare(a, b)})
