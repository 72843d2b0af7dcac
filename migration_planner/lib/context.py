"""Template context: the user's roles and capabilities, for navigation (never the only check)."""

from __future__ import annotations

from django.http import HttpRequest

from .roles import CAPABILITIES, user_roles


def roles(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": frozenset(), "caps": {}}
    caps = {name.split(".", 1)[1]: user.has_perm(name) for name in CAPABILITIES}
    return {"user_roles": user_roles(user), "caps": caps}
