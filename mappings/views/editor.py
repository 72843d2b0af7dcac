"""The entity and field mapping editor: grid, field/step forms, preview, suggestions (htmx)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required
from runs.engine.rules import REGISTRY

from .. import services_edit as edit
from ..forms import EntityForm, FieldForm, step_form
from ..models import FieldMapping
from ..preview import entity_preview
from ..schema import system_schema, system_table
from ..selectors import entity_grid
from ..suggest import entity_suggestions
from ._common import EDIT, can_edit, entity_or_404, plan_or_404, triggered
from ._steps_common import new_step_context, step_choices

PAGE = "mappings/entity_editor.html"


def _entity_form(plan, data=None, initial=None) -> EntityForm:
    return EntityForm(
        data,
        initial=initial,
        source_tables=sorted(system_schema(plan.source).tables),
        target_tables=sorted(system_schema(plan.target).tables),
    )


@capability_required(EDIT)
def entity_new_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    try:
        form = _entity_form(plan, request.POST or None)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(plan)
    if request.method == "POST" and form.is_valid():
        try:
            data = form.service_data(
                system_table(plan.source, form.cleaned_data["source_table"]).primary_key,
                system_table(plan.target, form.cleaned_data["target_table"]).primary_key,
            )
            entity = edit.entity_create(plan=plan, user=request.user, data=data)
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Entity “{entity.name}” added.")
            return redirect("mappings:entity_editor", slug=plan.slug, uuid=entity.uuid)
    return render(request, "mappings/entity_form.html", {"plan": plan, "form": form})


@capability_required(EDIT)
def entity_settings_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    plan = plan_or_404(slug)
    entity = entity_or_404(plan, uuid)
    initial = {k: getattr(entity, k) for k in edit.ENTITY_FIELDS}
    initial["source_key"] = ", ".join(entity.source_key)
    form = _entity_form(plan, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            data = form.service_data(tuple(entity.source_key), (entity.target_key,))
            edit.entity_update(entity=entity, user=request.user, data=data)
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Entity “{entity.name}” saved.")
            return redirect("mappings:entity_editor", slug=plan.slug, uuid=entity.uuid)
    return render(
        request, "mappings/entity_form.html", {"plan": plan, "form": form, "entity": entity}
    )


@require_POST
@capability_required(EDIT)
def entity_delete_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    plan = plan_or_404(slug)
    entity = entity_or_404(plan, uuid)
    edit.entity_delete(entity=entity, user=request.user)
    messages.success(request, f"Entity “{entity.name}” deleted.")
    return redirect(plan)


@capability_required("mp.view")
def entity_editor_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    plan = plan_or_404(slug)
    entity = entity_or_404(plan, uuid)
    try:
        grid, error = entity_grid(entity=entity), None
    except ApplicationError as exc:
        grid, error = [], exc.message
    return render(
        request,
        PAGE,
        {
            "plan": plan,
            "entity": entity,
            "grid": grid,
            "grid_error": error,
            "can_edit": can_edit(request),
            "rules": REGISTRY.values(),
        },
    )


@capability_required("mp.view")
def entity_grid_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    plan = plan_or_404(slug)
    entity = entity_or_404(plan, uuid)
    try:
        grid, error = entity_grid(entity=entity), None
    except ApplicationError as exc:
        grid, error = [], exc.message
    return render(
        request,
        f"{PAGE}#grid",
        {
            "plan": plan,
            "entity": entity,
            "grid": grid,
            "grid_error": error,
            "can_edit": can_edit(request),
        },
    )


# --------------------------------------------------------------------------- field editor


def _editor(
    request: HttpRequest,
    entity,
    column: str,
    *,
    error: str | None = None,
    field_form: FieldForm | None = None,
    bad_step=None,
    new_step: tuple[str, object] | None = None,
) -> HttpResponse:
    """Render the field editor partial for one target column of ``entity``."""
    plan = entity.plan
    field = (
        FieldMapping.objects.prefetch_related("steps")
        .filter(entity=entity, target_column=column)
        .first()
    )
    target = system_table(plan.target, entity.target_table)
    if column not in target.column_names and field is None:
        raise Http404("No such target column.")
    source_cols = list(system_table(plan.source, entity.source_table).column_names)
    if field_form is None:
        initial = (
            {
                "source_columns": field.source_columns,
                "default_value": field.default_value,
                "required": field.required,
                "notes": field.notes,
            }
            if field
            else {}
        )
        field_form = FieldForm(initial=initial, columns=source_cols)
    choices = step_choices(entity, source_cols)
    steps = []
    for step in field.steps.all() if field else ():
        form = (
            bad_step[1]
            if bad_step and bad_step[0] == step.pk
            else step_form(step.rule, prefix=f"s{step.pk}", params=step.params, **choices)
        )
        steps.append((step, form, REGISTRY.get(step.rule)))
    col = target.column(column) if column in target.column_names else None
    context = {
        "plan": plan,
        "entity": entity,
        "column": column,
        "col": col,
        "field": field,
        "field_form": field_form,
        "steps": steps,
        "rules": REGISTRY.values(),
        "error": error,
        "can_edit": can_edit(request),
    }
    if new_step is not None:
        context.update(new_step_context(entity, new_step[0], form=new_step[1]))
    return render(request, f"{PAGE}#field_editor", context)


@capability_required("mp.view")
def field_editor_view(request: HttpRequest, slug: str, uuid, column: str) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    return _editor(request, entity, column)


@require_POST
@capability_required(EDIT)
def field_save_view(request: HttpRequest, slug: str, uuid, column: str) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    source_cols = system_table(entity.plan.source, entity.source_table).column_names
    form = FieldForm(request.POST, columns=source_cols)
    if not form.is_valid():
        return _editor(request, entity, column, field_form=form, error="Check the form.")
    field = entity.fields.filter(target_column=column).first()
    try:
        if field is None:
            edit.field_create(
                entity=entity,
                user=request.user,
                data={**form.service_data(), "target_column": column},
            )
        else:
            edit.field_update(field=field, user=request.user, data=form.service_data())
    except ApplicationError as exc:
        return _editor(request, entity, column, field_form=form, error=exc.message)
    return triggered(_editor(request, entity, column))


@require_POST
@capability_required(EDIT)
def field_delete_view(request: HttpRequest, slug: str, uuid, column: str) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    field = get_object_or_404(FieldMapping, entity=entity, target_column=column)
    edit.field_delete(field=field, user=request.user)
    return triggered(_editor(request, entity, column))


# --------------------------------------------------------------------------- preview, suggest


@capability_required("mp.view")
def preview_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    try:
        limit = int(request.GET.get("n", 20))
    except ValueError:
        limit = 20
    order = "random" if request.GET.get("order") == "random" else "first"
    preview = entity_preview(entity=entity, limit=limit, order=order)
    return render(
        request, f"{PAGE}#preview", {"plan": entity.plan, "entity": entity, "preview": preview}
    )


def _rejected(request: HttpRequest, entity) -> set[tuple[str, str]]:
    return {tuple(p) for p in request.session.get(f"rejected-{entity.uuid}", [])}


def _suggestions(request: HttpRequest, entity, error: str | None = None) -> HttpResponse:
    try:
        items = entity_suggestions(entity=entity, rejected=_rejected(request, entity))
    except ApplicationError as exc:
        items, error = [], exc.message
    return render(
        request,
        f"{PAGE}#suggestions",
        {
            "plan": entity.plan,
            "entity": entity,
            "suggestions": items,
            "error": error,
            "can_edit": can_edit(request),
        },
    )


@capability_required("mp.view")
def suggest_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    return _suggestions(request, entity_or_404(plan_or_404(slug), uuid))


@require_POST
@capability_required(EDIT)
def suggest_decide_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    entity = entity_or_404(plan_or_404(slug), uuid)
    source, target = request.POST.get("source", ""), request.POST.get("target", "")
    if request.POST.get("decision") == "reject":
        key = f"rejected-{entity.uuid}"
        request.session[key] = [*request.session.get(key, []), [source, target]]
        return _suggestions(request, entity)
    try:
        edit.field_create(
            entity=entity,
            user=request.user,
            data={"target_column": target, "source_columns": [source]},
        )
    except ApplicationError as exc:
        return _suggestions(request, entity, error=exc.message)
    return triggered(_suggestions(request, entity))
