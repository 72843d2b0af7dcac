"""Project-level pages: the dashboard and the health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.defaults import page_not_found
from prometheus_client import CONTENT_TYPE_LATEST

from mappings.selectors import plan_list
from migration_planner.lib.views import capability_required
from runs.selectors import run_list_recent

from .dashboard import first_run_steps
from .health import broker_status, database_status, runs_status, workers_status
from .metrics import metrics_allowed, metrics_text


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
    """200 when the database and the broker answer, else 503; ``?require=workers`` also
    answers 503 while no worker has a recent heartbeat (for a probe of the worker tier),
    ``?require=runs`` while a run is stalled. The body always reports both."""
    db, broker = database_status(connection), broker_status()
    workers = workers_status() if db["ok"] else {"ok": False, "live": 0}
    runs = runs_status() if db["ok"] else {"ok": False, "stalled": 0}
    ok = db["ok"] and broker["ok"]
    required = request.GET.getlist("require")
    if "workers" in required:
        ok = ok and workers["ok"]
    if "runs" in required:
        ok = ok and runs["ok"]
    body = {"status": "ok" if ok else "degraded", "database": db, "broker": broker}
    return JsonResponse(body | {"workers": workers, "runs": runs}, status=200 if ok else 503)


@login_not_required
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text metrics for a scraper allowed by ``metrics_allowed`` (403 otherwise)."""
    if not metrics_allowed(request):
        return HttpResponse("Forbidden: see MP_METRICS_TOKEN.\n", status=403)
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404: JSON under /api/ (as the API's other answers), the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
