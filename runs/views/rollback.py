"""One-click rollback: confirm what will be undone, watch it, see the verification."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from migration_planner.lib.errors import ApplicationError, ConflictError
from migration_planner.lib.roles import refusal_text
from migration_planner.lib.views import capability_required
from runs.forms import RollbackForm
from runs.models import Rollback, Run
from runs.selectors import rollback_preview, rollback_preview_unwritten, run_get

from .common import STOP_POLLING, capability, refuse

ROLLBACK_DENIED = refusal_text("mp.rollback_run")


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


def _waiting_for(run: Run) -> Rollback | None:
    """The rollback of a later run whose chain rolls ``run`` back after it (a stack rollback
    undoes the later runs first), newest first; None when there is none. The chains are read
    in Python: SQLite has no JSON contains lookup."""
    heads = Rollback.objects.filter(run__target_id=run.target_id, run__pk__gt=run.pk)
    for head in heads.select_related("run", "requested_by").order_by("-pk")[:50]:
        if run.pk in (head.chain or []):
            return head
    return None


def _progress_context(run: Run) -> dict:
    rollback = Rollback.objects.filter(run=run).select_related("requested_by").first()
    if rollback is None:
        head = _waiting_for(run)
        if head is None:
            raise Http404("This run has not been rolled back.")
        return {"run": run, "rollback": None, "waiting_for": head, "tables": []}
    return {"run": run, "rollback": rollback, "tables": rollback_tables(rollback)}


@capability_required("mp.view")
def rollback_progress_view(request: HttpRequest, uuid) -> HttpResponse:
    return render(request, "runs/rollback_progress.html", _progress_context(_run(uuid)))


@capability_required("mp.view")
def rollback_status_view(request: HttpRequest, uuid) -> HttpResponse:
    """The polled partial: 286 once the rollback has a verdict."""
    context = _progress_context(_run(uuid))
    rollback = context["rollback"] or context["waiting_for"]
    waiting = context["rollback"] is None and rollback.status in ("running", "verified")
    status = 200 if waiting or rollback.status == "running" else STOP_POLLING
    return render(request, "runs/partials/_rollback_status.html", context, status=status)
