"""Login required everywhere but the login page, health check and API (DRF answers 401/403);
security headers."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as _Base


class LoginRequiredMiddleware(_Base):
    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None  # DRF's RolePermission refuses anonymous callers with a JSON body
        return super().process_view(request, view_func, view_args, view_kwargs)


class SecurityHeadersMiddleware:
    """Permissions-Policy on every response; ``Cache-Control: no-store`` on what a logged-in
    user is shown (pages and API answers hold plan data), so no shared cache keeps them."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        return response
