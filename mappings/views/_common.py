"""Helpers shared by the workbench views."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from ..models import EntityMapping, Plan
from ..selectors import entity_for_edit

EDIT = "mp.edit_plan"
SYSTEMS = "mp.manage_systems"
CHANGED = "mapping-changed"


def plan_or_404(slug: str) -> Plan:
    plan = Plan.objects.select_related("source", "target", "owner").filter(slug=slug).first()
    if plan is None:
        raise Http404("No such plan.")
    return plan


def entity_or_404(plan: Plan, uuid) -> EntityMapping:
    try:
        return entity_for_edit(plan=plan, uuid=uuid)
    except EntityMapping.DoesNotExist as exc:
        raise Http404("No such entity in this plan.") from exc


def triggered(response: HttpResponse, event: str = CHANGED) -> HttpResponse:
    """Tell htmx listeners (grid, warnings, preview) that the mapping changed."""
    response["HX-Trigger"] = event
    return response


def can_edit(request: HttpRequest) -> bool:
    return request.user.has_perm(EDIT)
