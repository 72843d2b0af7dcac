"""Profiling page for a source table (bounded sample, server-rendered SVG charts)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required

from ..models import System
from ..profiling import SAMPLE_ROWS, bar_chart_svg, profile_frame
from ..schema import sample_frame, system_table


@capability_required("mp.view")
def table_profile_view(request: HttpRequest, uuid, table: str) -> HttpResponse:
    system = get_object_or_404(System, uuid=uuid)
    try:
        info = system_table(system, table)
        frame = sample_frame(system, table, info.column_names, limit=SAMPLE_ROWS + 1,
                             key=info.primary_key)
    except ApplicationError as exc:
        return render(request, "mappings/table_profile.html",
                      {"system": system, "table": table, "error": exc.message}, status=400)
    sampled = len(frame) > SAMPLE_ROWS
    profile = profile_frame(table, frame.head(SAMPLE_ROWS), key=info.primary_key,
                            sampled=sampled)
    charts = {c.name: (mark_safe(bar_chart_svg(c.top_values)),  # noqa: S308 -- escaped SVG
                       mark_safe(bar_chart_svg(c.shapes)))  # noqa: S308 -- escaped SVG
              for c in profile.columns}
    rows = [(c, charts[c.name]) for c in profile.columns]
    return render(request, "mappings/table_profile.html", {
        "system": system, "table": table, "info": info, "profile": profile, "rows": rows,
        "limit": SAMPLE_ROWS})
