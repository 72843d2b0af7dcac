"""Decorators shared by HTML views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied

from .roles import refusal_text


def capability_required(capability: str) -> Callable:
    """Refuse (403) unless the logged-in user's role grants ``capability``."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.has_perm(capability):
                raise PermissionDenied(refusal_text(capability))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
