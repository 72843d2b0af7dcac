"""The role permission every API endpoint uses (imported by DRF settings: keep imports light)."""

from __future__ import annotations

from rest_framework import permissions


class RolePermission(permissions.BasePermission):
    """Authenticated users with a role may read; writes need the view's ``write_capability``."""

    message = "Your role does not allow this action."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.has_perm("mp.view")):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        capability = getattr(view, "write_capability", "mp.edit_plan")
        if user.has_perm(capability):
            return True
        from .roles import refusal_text  # lazy: DRF settings import this module

        self.message = refusal_text(capability)
        return False
