"""HTML pages for runs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from migration_planner.lib.views import capability_required

from .models import Run
from .selectors import run_list


@capability_required("mp.view")
def run_list_view(request: HttpRequest) -> HttpResponse:
    runs = run_list(plan_slug=request.GET.get("plan"), status=request.GET.get("status"))[:200]
    return render(request, "runs/run_list.html", {"runs": runs})


@capability_required("mp.view")
def run_detail_view(request: HttpRequest, uuid) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("plan", "version", "target"), uuid=uuid)
    batches = run.batches.order_by("seq")[:500]
    logs = run.logs.all()[:20]
    return render(request, "runs/run_detail.html", {"run": run, "batches": batches, "logs": logs})
