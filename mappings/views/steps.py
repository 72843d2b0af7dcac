"""Rule-step views of the field editor: the add-step form (built from the registry), edit,
move, delete (htmx fragments)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required
from runs.engine.rules import REGISTRY

from .. import services_edit as edit
from ..forms import step_form, step_params
from ..models import FieldMapping, RuleStep
from ._common import EDIT, entity_or_404, plan_or_404, triggered
from ._steps_common import NEW, new_step_context, step_choices
from .editor import PAGE, _editor


def _step(entity, step_uuid) -> RuleStep:
    return get_object_or_404(
        RuleStep.objects.select_related("field__entity__plan"), uuid=step_uuid, field__entity=entity
    )


@capability_required(EDIT)
def step_form_view(request: HttpRequest, slug: str, uuid, column: str) -> HttpResponse:
    """The add-step parameters of the chosen rule type (htmx, on changing the rule select)."""
    entity = entity_or_404(plan_or_404(slug), uuid)
    context = new_step_context(entity, request.GET.get("rule", ""))
    return render(
        request,
        f"{PAGE}#new_step",
        {"plan": entity.plan, "entity": entity, "column": column, **context},
    )


@require_POST
@capability_required(EDIT)
def step_add_view(request: HttpRequest, slug: str, uuid, column: str) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    field = get_object_or_404(FieldMapping, entity=entity, target_column=column)
    rule = request.POST.get("rule", "")
    if rule not in REGISTRY:
        return _editor(request, entity, column, error="Choose a rule type to add.")
    form = step_form(rule, prefix=NEW, data=request.POST, **step_choices(entity))
    if not form.is_valid():
        return _editor(
            request,
            entity,
            column,
            new_step=(rule, form),
            error=f"New step ({REGISTRY[rule].label}): check its parameters.",
        )
    try:
        edit.step_add(field=field, user=request.user, rule=rule, params=step_params(rule, form))
    except ApplicationError as exc:
        return _editor(request, entity, column, error=exc.message, new_step=(rule, form))
    return triggered(_editor(request, entity, column))


@require_POST
@capability_required(EDIT)
def step_save_view(request: HttpRequest, slug: str, uuid, step: str) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    obj = _step(entity, step)
    form = step_form(obj.rule, prefix=f"s{obj.pk}", data=request.POST, **step_choices(entity))
    column = obj.field.target_column
    if not form.is_valid():
        return _editor(
            request,
            entity,
            column,
            error=f"Step {obj.position + 1} ({obj.rule}): check its parameters.",
            bad_step=(obj.pk, form),
        )
    try:
        edit.step_update(step=obj, user=request.user, params=step_params(obj.rule, form))
    except ApplicationError as exc:
        return _editor(request, entity, column, error=exc.message, bad_step=(obj.pk, form))
    return triggered(_editor(request, entity, column))


@require_POST
@capability_required(EDIT)
def step_move_view(request: HttpRequest, slug: str, uuid, step: str) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    obj = _step(entity, step)
    try:
        edit.step_move(step=obj, user=request.user, direction=request.POST.get("direction"))
    except ApplicationError as exc:
        return _editor(request, entity, obj.field.target_column, error=exc.message)
    return triggered(_editor(request, entity, obj.field.target_column))


@require_POST
@capability_required(EDIT)
def step_delete_view(request: HttpRequest, slug: str, uuid, step: str) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    obj = _step(entity, step)
    column = obj.field.target_column
    try:
        edit.step_delete(step=obj, user=request.user)
    except ApplicationError as exc:
        return _editor(request, entity, column, error=exc.message)
    return triggered(_editor(request, entity, column))
