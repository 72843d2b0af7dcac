"""Profiling page for a source table (bounded sample, server-rendered SVG charts), reached from a
system's schema or from an entity (then each suggestion can be applied to the fields the column
feeds: previewed first, then added)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required

from ..models import EntityMapping, FieldMapping, System
from ..profiling import SAMPLE_ROWS, bar_chart_svg, profile_frame
from ..schema import sample_frame, system_table
from ..services_suggestions import (
    column_profile,
    column_suggestion,
    field_suggestion_apply,
    suggestion_preview,
    suggestion_targets,
)
from ._common import EDIT, can_edit, entity_or_404, plan_or_404

PAGE = "mappings/table_profile.html"


def _profile_context(
    request: HttpRequest, system: System, table: str, feeds: dict[str, list[str]] | None = None
) -> dict:
    """The profile of ``table`` with duplicate candidates on the columns the user picked
    (``?dupes=a&dupes=b``; the primary key by default)."""
    info = system_table(system, table)
    picked = [c for c in request.GET.getlist("dupes") if c in info.column_names]
    dupes = tuple(picked) or tuple(info.primary_key)
    frame = sample_frame(
        system, table, info.column_names, limit=SAMPLE_ROWS + 1, key=info.primary_key
    )
    sampled = len(frame) > SAMPLE_ROWS
    profile = profile_frame(table, frame.head(SAMPLE_ROWS), key=dupes, sampled=sampled)
    charts = {
        c.name: (
            mark_safe(bar_chart_svg(c.top_values)),  # noqa: S308 -- escaped SVG
            mark_safe(bar_chart_svg(c.shapes)),  # noqa: S308 -- escaped SVG
        )
        for c in profile.columns
    }
    return {
        "system": system,
        "table": table,
        "info": info,
        "profile": profile,
        "rows": [(c, charts[c.name], (feeds or {}).get(c.name, []), []) for c in profile.columns],
        "limit": SAMPLE_ROWS,
        "dupes": dupes,
    }


@capability_required("mp.view")
def table_profile_view(request: HttpRequest, uuid, table: str) -> HttpResponse:
    system = get_object_or_404(System, uuid=uuid)
    try:
        context = _profile_context(request, system, table)
    except ApplicationError as exc:
        return render(
            request, PAGE, {"system": system, "table": table, "error": exc.message}, status=400
        )
    return render(request, PAGE, context)


def _feeds(entity: EntityMapping) -> dict[str, list[str]]:
    """Source column → the entity's target columns it feeds."""
    out: dict[str, list[str]] = {}
    for target, sources in entity.fields.values_list("target_column", "source_columns"):
        for source in sources:
            out.setdefault(source, []).append(target)
    return out


def _fits(entity: EntityMapping, column: str, suggestions: list) -> list:
    """Per suggestion: the targets it may be applied to and those refused, with the reason."""
    return [
        ([t for t, why in targets if not why], [(t, why) for t, why in targets if why])
        for targets in suggestion_targets(entity=entity, column=column, suggestions=suggestions)
    ]


@capability_required("mp.view")
def entity_profile_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    plan = plan_or_404(slug)
    entity = entity_or_404(plan, uuid)
    base = {
        "system": plan.source,
        "table": entity.source_table,
        "plan": plan,
        "entity": entity,
        "can_edit": can_edit(request),
    }
    try:
        context = _profile_context(request, plan.source, entity.source_table, _feeds(entity))
        context["rows"] = [
            (c, charts, targets, _fits(entity, c.name, c.suggestions) if targets else [])
            for c, charts, targets, _ in context["rows"]
        ]
    except ApplicationError as exc:
        return render(request, PAGE, base | {"error": exc.message}, status=400)
    return render(request, PAGE, context | base)


@capability_required(EDIT)
def suggestion_apply_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    """GET: the chain before and after the suggestion on the column's frequent values; POST:
    add the steps (Post/Redirect/Get to the entity editor)."""
    plan = plan_or_404(slug)
    entity = entity_or_404(plan, uuid)
    data = request.POST if request.method == "POST" else request.GET
    field = get_object_or_404(FieldMapping, entity=entity, target_column=data.get("target", ""))
    column, lookup = data.get("column", ""), data.get("lookup", "")
    context = {
        "plan": plan,
        "entity": entity,
        "field": field,
        "column": column,
        "lookup": lookup,
        "index": data.get("s", ""),
        "label": data.get("label", ""),
        "lookups": list(plan.lookups.order_by("name").values_list("name", flat=True)),
    }
    try:
        if column not in field.source_columns:
            raise ApplicationError(f"“{field.target_column}” is not fed by “{column}”.")
        profile = column_profile(entity=entity, column=column)
        suggestion = column_suggestion(
            profile=profile, index=int(data.get("s", -1)), label=context["label"]
        )
        context["suggestion"] = suggestion
        if request.method == "POST":
            steps = field_suggestion_apply(
                field=field, user=request.user, suggestion=suggestion, lookup=lookup
            )
            messages.success(
                request,
                f"Added to “{field.target_column}”: " + " → ".join(s.rule for s in steps) + ".",
            )
            return redirect("mappings:entity_editor", slug=plan.slug, uuid=entity.uuid)
        if not suggestion.needs_lookup or lookup:
            context["preview"] = suggestion_preview(
                field=field, profile=profile, suggestion=suggestion, lookup=lookup
            )
    except (ApplicationError, ValueError) as exc:
        context["error"] = getattr(exc, "message", None) or str(exc)
    status = 400 if "error" in context and request.method == "POST" else 200
    return render(request, "mappings/suggestion_apply.html", context, status=status)
