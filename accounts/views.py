"""The API tokens page (under the user's menu): create (shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required

from .models import PersonalAccessToken
from .services import token_create, token_revoke

SHOWN_ONCE_SESSION_KEY = "accounts.new_token"


@capability_required("mp.view")
@never_cache  # the page that shows a new token once must not be kept by the browser
def token_list_view(request: HttpRequest) -> HttpResponse:
    """GET: the user's tokens (and a token just created, shown this once: popped from the
    session); POST: create one, then redirect (POST/redirect/GET, so a refresh does not post
    again). The token itself is never stored beyond that one redirect."""
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
            request.session[SHOWN_ONCE_SESSION_KEY] = {"uuid": str(token.uuid), "key": key}
            return redirect("accounts:tokens")
    else:
        new = request.session.pop(SHOWN_ONCE_SESSION_KEY, None)
        if new:
            token = PersonalAccessToken.objects.filter(user=request.user, uuid=new["uuid"]).first()
            if token is not None:
                context.update(new_token=token, new_key=new["key"])
    context["tokens"] = PersonalAccessToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", context, status=status)


@require_POST
@capability_required("mp.view")
def token_revoke_view(request: HttpRequest, uuid) -> HttpResponse:
    token = get_object_or_404(PersonalAccessToken, uuid=uuid, user=request.user)
    token_revoke(token=token, user=request.user, request=request)
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("accounts:tokens")
