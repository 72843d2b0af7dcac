"""The API tokens page (under the user's menu): create (shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required

from .models import PersonalAccessToken
from .services import token_create, token_revoke


@capability_required("mp.view")
def token_list_view(request: HttpRequest) -> HttpResponse:
    """GET: the user's tokens; POST: create one and show it this once (not redirected: the
    token is never stored, so a later page cannot show it)."""
    context: dict = {"name": ""}
    status = 200
    if request.method == "POST":
        try:
            token, key = token_create(
                user=request.user, name=request.POST.get("name", ""), request=request
            )
        except ApplicationError as exc:
            context.update(error=exc.message, name=request.POST.get("name", ""))
            status = 400
        else:
            context.update(new_token=token, new_key=key)
    context["tokens"] = PersonalAccessToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", context, status=status)


@require_POST
@capability_required("mp.view")
def token_revoke_view(request: HttpRequest, uuid) -> HttpResponse:
    token = get_object_or_404(PersonalAccessToken, uuid=uuid, user=request.user)
    token_revoke(token=token, user=request.user, request=request)
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("accounts:tokens")
