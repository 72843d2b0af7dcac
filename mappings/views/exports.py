"""Plan YAML export (the plan document, which shows sign-offs too, is composed above the apps:
``migration_planner.plan_pages``)."""

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
