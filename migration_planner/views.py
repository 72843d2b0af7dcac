"""Project-level pages: the dashboard and the health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from mappings.selectors import plan_list
from migration_planner.lib.views import capability_required
from runs.selectors import run_list_recent

from .dashboard import first_run_steps
from .health import broker_status, database_status


@capability_required("mp.view")
def dashboard(request: HttpRequest) -> HttpResponse:
    plans = plan_list(archived=False)
    return render(
        request,
        "dashboard.html",
        {
            "plans": plans,
            "runs": run_list_recent(limit=10),
            "start_here": first_run_steps(plans=plans, user=request.user),
        },
    )


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    db, broker = database_status(connection), broker_status()
    ok = db["ok"] and broker["ok"]
    return JsonResponse(
        {"status": "ok" if ok else "degraded", "database": db, "broker": broker},
        status=200 if ok else 503,
    )
