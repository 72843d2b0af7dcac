"""Helpers shared by the runs console views: turning domain errors into responses."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from migration_planner.lib.errors import ApplicationError, PermissionDeniedError

STOP_POLLING = 286  # htmx stops a polling trigger on this status


def refuse(request: HttpRequest, exc: ApplicationError) -> HttpResponse | None:
    """403 for a permission refusal (htmx gets the bare message); otherwise None so the caller
    shows ``exc.message`` (flashed here for plain requests, inline for htmx ones)."""
    if isinstance(exc, PermissionDeniedError):
        if request.htmx:
            return HttpResponse(exc.message, status=403)
        raise PermissionDenied(exc.message)
    if not request.htmx:
        messages.error(request, exc.message)
    return None


def capability(name: str, message: str) -> Callable:
    """Refuse with 403 and ``message`` unless the user's role grants capability ``name``
    (htmx requests get the bare message, shown by app.js; pages get the 403 template)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perm(name):
                if request.htmx:
                    return HttpResponse(message, status=403)
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
