"""Plan YAML export and the plan document (modules owned by the YAML/document feature)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from migration_planner.lib.views import capability_required

from ._common import plan_or_404


@capability_required("mp.view")
def plan_yaml_view(request: HttpRequest, slug: str) -> HttpResponse:
    from ..yaml_io import plan_export_yaml  # imported here: a module still being built

    plan = plan_or_404(slug)
    response = HttpResponse(plan_export_yaml(plan=plan), content_type="application/yaml")
    response["Content-Disposition"] = f'attachment; filename="{plan.slug}.yaml"'
    return response


@capability_required("mp.view")
def plan_document_view(request: HttpRequest, slug: str) -> HttpResponse:
    from .. import document

    plan = plan_or_404(slug)
    fmt = request.GET.get("format", "html")
    if fmt == "md":
        response = HttpResponse(document.plan_document_markdown(plan=plan),
                                content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{plan.slug}.md"'
        return response
    if fmt == "pdf":
        response = HttpResponse(document.plan_document_pdf(plan=plan),
                                content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{plan.slug}.pdf"'
        return response
    return HttpResponse(document.plan_document_html(plan=plan))
