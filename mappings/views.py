"""HTML pages for plans and systems."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from migration_planner.lib.views import capability_required
from runs.selectors import run_list

from .models import Plan, System
from .selectors import plan_detail, plan_list, system_list


@capability_required("mp.view")
def plan_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "mappings/plan_list.html", {"plans": plan_list()})


@capability_required("mp.view")
def plan_detail_view(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        plan = plan_detail(slug=slug)
    except Plan.DoesNotExist as exc:
        raise Http404("No such plan.") from exc
    runs = run_list(plan_slug=slug)[:10]
    return render(request, "mappings/plan_detail.html", {"plan": plan, "runs": runs})


@capability_required("mp.view")
def system_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "mappings/system_list.html", {"systems": system_list()})


@capability_required("mp.view")
def system_detail_view(request: HttpRequest, uuid) -> HttpResponse:
    system = get_object_or_404(System, uuid=uuid)
    return render(request, "mappings/system_detail.html", {"system": system})
