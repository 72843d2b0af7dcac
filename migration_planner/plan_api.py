"""The plan API with what it shows of the apps above mappings: the plan document (its sign-off
and UAT results), composed here like the plan pages (``plan_pages``). ``api_urls`` registers
this ``PlanViewSet`` for ``/api/plans/``."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request

from mappings import api as mappings_api
from mappings.api_extra import DOC_FORMAT, DocumentHTMLRenderer, MarkdownRenderer, PDFRenderer

from . import plan_document as document


class PlanViewSet(mappings_api.PlanViewSet):
    """Plans (``mappings.api.PlanViewSet``) and their plan document."""

    @extend_schema(
        parameters=[DOC_FORMAT],
        responses={
            (200, "text/html"): OpenApiTypes.STR,
            (200, "text/markdown"): OpenApiTypes.STR,
            (200, "application/pdf"): OpenApiTypes.BINARY,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[DocumentHTMLRenderer, MarkdownRenderer, PDFRenderer],
    )
    def document(self, request: Request, slug=None) -> HttpResponse:
        """The plan document a signer signs, as HTML, Markdown or PDF (same as the page)."""
        plan = self.get_object()
        fmt = request.accepted_renderer.format
        if fmt == "md":
            body = document.plan_document_markdown(plan=plan)
            response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
        elif fmt == "pdf":
            response = HttpResponse(
                document.plan_document_pdf(plan=plan), content_type="application/pdf"
            )
        else:
            return HttpResponse(
                document.plan_document_html(plan=plan), content_type="text/html; charset=utf-8"
            )
        response["Content-Disposition"] = f'attachment; filename="{plan.slug}.{fmt}"'
        return response
