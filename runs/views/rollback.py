"""One-click rollback: confirm what will be undone, watch it, see the verification."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from migration_planner.lib.errors import ApplicationError, ConflictError
from migration_planner.lib.views import capability_required
from runs.forms import RollbackForm
from runs.models import Rollback, Run
from runs.selectors import rollback_preview, rollback_preview_unwritten, run_get

from .common import STOP_POLLING, capability, refuse

ROLLBACK_DENIED = "Only an operator may roll a run back."


def _run(uuid) -> Run:
    try:
        return run_get(uuid=uuid)
    except Run.DoesNotExist as exc:
        raise Http404("No such run.") from exc


def rollback_tables(rollback: Rollback) -> list[dict]:
    """Per target table: checksums before the run, after the rollback, and whether they differ."""
    before, after = rollback.checksums_before_run or {}, rollback.checksums_after or {}
    return [
        {
            "table": t,
            "before": before.get(t),
            "after": after.get(t),
            "differs": t in after and before.get(t) != after.get(t),
        }
        for t in sorted(set(before) | set(after))
    ]


@capability("mp.rollback_run", ROLLBACK_DENIED)
def rollback_confirm_view(request: HttpRequest, uuid) -> HttpResponse:
    from runs.services import (
        run_rollback_blockers,
        run_rollback_request,
        run_rollback_stack_request,
        table_leases_for,
    )
    from runs.services.rollback_order import run_tables

    run = _run(uuid)
    form = RollbackForm(request.POST or None)
    context = {
        "run": run,
        "form": form,
        "entities": rollback_preview(run),
        "unwritten_batches": rollback_preview_unwritten(run),
        "later_runs": run_rollback_blockers(run=run),
        "leases": table_leases_for(target=run.target, tables=run_tables(run)),
    }
    if request.method == "POST" and form.is_valid():
        stack = form.cleaned_data["with_later_runs"]
        service = run_rollback_stack_request if stack else run_rollback_request
        try:
            service(run=run, user=request.user, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            refuse(request, exc)
            code = 409 if isinstance(exc, ConflictError) else 400
            return render(request, "runs/rollback_confirm.html", context, status=code)
        return redirect("runs:rollback_progress", uuid=run.uuid)
    return render(request, "runs/rollback_confirm.html", context)


def _chained_by(run: Run) -> Rollback | None:
    """The newest rollback of a later run on the same target whose chain still has to roll
    ``run`` back ("Roll back all runs, newest first"), or None."""
    later = (
        Rollback.objects.filter(run__target_id=run.target_id, run__pk__gt=run.pk)
        .select_related("run", "requested_by")
        .order_by("-started_at", "-pk")[:50]
    )
    return next((r for r in later if run.pk in (r.chain or [])), None)


def _progress_context(run: Run) -> dict:
    rollback = Rollback.objects.filter(run=run).select_related("requested_by").first()
    if rollback is not None:
        return {"run": run, "rollback": rollback, "tables": rollback_tables(rollback)}
    first = _chained_by(run)
    if first is None:
        raise Http404("This run has not been rolled back.")
    # still waiting while the later run's rollback runs or verified (the next one starts then)
    waiting = first.status in ("running", "verified")
    return {"run": run, "rollback": None, "first": first, "waiting": waiting, "tables": []}


@capability_required("mp.view")
def rollback_progress_view(request: HttpRequest, uuid) -> HttpResponse:
    return render(request, "runs/rollback_progress.html", _progress_context(_run(uuid)))


@capability_required("mp.view")
def rollback_status_view(request: HttpRequest, uuid) -> HttpResponse:
    """The polled partial: 286 once the rollback (or the chain before it) has a verdict."""
    context = _progress_context(_run(uuid))
    rollback = context["rollback"]
    polling = context["waiting"] if rollback is None else rollback.status == "running"
    status = 200 if polling else STOP_POLLING
    return render(request, "runs/partials/_rollback_status.html", context, status=status)
