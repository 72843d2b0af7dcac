"""Login required everywhere but the login page, health check and API (DRF answers 401/403)."""

from __future__ import annotations

from django.contrib.auth.middleware import LoginRequiredMiddleware as _Base


class LoginRequiredMiddleware(_Base):
    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None  # DRF's RolePermission refuses anonymous callers with a JSON body
        return super().process_view(request, view_func, view_args, view_kwargs)
