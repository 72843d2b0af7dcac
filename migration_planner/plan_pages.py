"""Plan pages that show several apps at once, composed above them: the plan page (its mappings
with its runs) and the plan document (its content with its sign-off and UAT results). Their URLs
keep the ``mappings:`` names (see ``urls.py``)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from mappings.forms import MilestoneForm
from mappings.models import Plan
from mappings.selectors import plan_detail
from mappings.views._common import can_edit, plan_or_404
from migration_planner.lib.views import capability_required
from runs.selectors import run_list

from . import plan_document as document


@capability_required("mp.view")
def plan_detail_view(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        plan = plan_detail(slug=slug)
    except Plan.DoesNotExist as exc:
        raise Http404("No such plan.") from exc
    runs = run_list(plan_slug=slug)[:10]
    return render(
        request,
        "mappings/plan_detail.html",
        {
            "plan": plan,
            "runs": runs,
            "can_edit": can_edit(request),
            "milestone_form": MilestoneForm(),
        },
    )


@capability_required("mp.view")
def plan_document_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    fmt = request.GET.get("format", "html")
    if fmt == "md":
        response = HttpResponse(
            document.plan_document_markdown(plan=plan), content_type="text/markdown; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{plan.slug}.md"'
        return response
    if fmt == "pdf":
        response = HttpResponse(
            document.plan_document_pdf(plan=plan), content_type="application/pdf"
        )
        response["Content-Disposition"] = f'attachment; filename="{plan.slug}.pdf"'
        return response
    return HttpResponse(document.plan_document_html(plan=plan))
