"""The user's run notifications."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.views import capability_required
from runs.models import Notification
from runs.notifications import notifications_mark_read


@capability_required("mp.view")
def notification_list_view(request: HttpRequest) -> HttpResponse:
    items = Notification.objects.filter(user=request.user).select_related("run__plan")[:100]
    return render(request, "runs/notifications.html", {"items": items})


@require_POST
@capability_required("mp.view")
def notification_read_view(request: HttpRequest) -> HttpResponse:
    notifications_mark_read(user=request.user)
    return redirect("runs:notifications")
