"""Personal access tokens (issue 18): created and revoked by their owner (page and API),
stored hashed, shown once, audited, accepted as ``Token`` or ``Bearer``, with the owner's
role; revoked or inactive-user tokens get 401; a token cannot mint tokens."""

from __future__ import annotations

import hashlib

import pytest

from accounts.models import PersonalAccessToken
from accounts.services import token_create
from tests.factories import PASSWORD
from validation.models import AuditEvent

pytestmark = pytest.mark.django_db
JSON = "application/json"


def _auth(key: str, keyword: str = "Bearer") -> dict:
    return {"HTTP_AUTHORIZATION": f"{keyword} {key}"}


def test_page_creates_a_token_shown_once_and_stored_hashed(client_for, analyst):
    client = client_for(analyst)
    posted = client.post("/account/tokens/", {"name": "CI pipeline"})
    assert posted.status_code == 302 and posted["Location"] == "/account/tokens/"  # PRG
    created = client.get("/account/tokens/")  # the redirect's GET shows it, this once
    assert "no-store" in created["Cache-Control"]
    token = PersonalAccessToken.objects.get(user=analyst)
    key = created.context["new_key"]
    assert key in created.content.decode() and key.startswith(token.prefix)
    assert 'data-copy="#new-token-value"' in created.content.decode()
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {token.digest, token.prefix, token.name}
    listed = client.get("/account/tokens/").content.decode()
    assert "CI pipeline" in listed and key not in listed and "never" in listed
    event = AuditEvent.objects.get(object_type="accounts.PersonalAccessToken", action="create")
    assert event.actor == analyst and event.after["name"] == "CI pipeline"
    again = client.post("/account/tokens/", {"name": "CI pipeline"})
    assert again.status_code == 400 and "already have an active token" in again.content.decode()
    assert client.post("/account/tokens/", {"name": " "}).status_code == 400


def test_token_and_bearer_both_work_with_the_owners_role(client, viewer, analyst):
    _, viewer_key = token_create(user=viewer, name="read")
    _, analyst_key = token_create(user=analyst, name="edit")
    for keyword in ("Token", "Bearer", "bearer"):
        assert client.get("/api/plans/", **_auth(viewer_key, keyword)).status_code == 200
    body = {"yaml": "plan: ["}
    as_viewer = client.post(
        "/api/plans/import/check/", body, content_type=JSON, **_auth(viewer_key)
    )
    assert as_viewer.status_code == 403
    as_analyst = client.post(
        "/api/plans/import/check/", body, content_type=JSON, **_auth(analyst_key)
    )
    assert as_analyst.status_code == 400  # allowed; the YAML itself is refused
    assert PersonalAccessToken.objects.get(user=viewer).last_used_at is not None
    wrong = client.get("/api/plans/", **_auth(viewer_key + "x"))
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"] == "Token"
    assert client.get("/api/plans/", HTTP_AUTHORIZATION="Bearer a b").status_code == 401


def test_revoked_token_and_inactive_user_get_401(client_for, client, analyst):
    token, key = token_create(user=analyst, name="ci")
    assert client.get("/api/plans/", **_auth(key)).status_code == 200
    owner = client_for(analyst)
    assert owner.post(f"/account/tokens/{token.uuid}/revoke/").status_code == 302
    owner.logout()
    assert client.get("/api/plans/", **_auth(key)).status_code == 401
    revoked = AuditEvent.objects.get(object_id=str(token.uuid), action="delete")
    assert revoked.actor == analyst and revoked.after == {"revoked": True}
    _, other = token_create(user=analyst, name="ci")  # the name is free again
    analyst.is_active = False
    analyst.save()
    assert client.get("/api/plans/", **_auth(other)).status_code == 401


def test_only_the_owner_revokes_and_a_token_cannot_mint_tokens(client_for, client, analyst, viewer):
    token, key = token_create(user=analyst, name="ci")
    other = client_for(viewer)
    assert other.post(f"/account/tokens/{token.uuid}/revoke/").status_code == 404
    assert other.delete(f"/api/tokens/{token.uuid}/").status_code == 404
    other.logout()
    minted = client.post("/api/tokens/", {"name": "more"}, content_type=JSON, **_auth(key))
    assert minted.status_code == 403 and "cannot create tokens" in minted.json()["detail"]
    listed = client.get("/api/tokens/", **_auth(key)).json()["results"]
    assert [t["name"] for t in listed] == ["ci"] and "digest" not in listed[0]
    assert client.delete(f"/api/tokens/{token.uuid}/", **_auth(key)).status_code == 204
    assert client.get("/api/tokens/", **_auth(key)).status_code == 401


def test_session_api_creates_a_token_and_password_login_issues_one(client_for, client, viewer):
    made = client_for(viewer).post("/api/tokens/", {"name": "script"}, content_type=JSON)
    assert made.status_code == 201, made.content
    key = made.json()["token"]
    client.logout()
    assert client.get("/api/plans/", **_auth(key)).status_code == 200
    issued = client.post("/api/auth/token/", {"username": viewer.username, "password": PASSWORD})
    assert issued.status_code == 200
    assert client.get("/api/plans/", **_auth(issued.json()["token"], "Token")).status_code == 200
    assert PersonalAccessToken.objects.filter(user=viewer).count() == 2
    refused = client.post("/api/auth/token/", {"username": viewer.username, "password": "no"})
    assert refused.status_code == 400


def test_user_without_a_role_gets_no_token(client_for, outsider):
    assert client_for(outsider).get("/account/tokens/").status_code == 403
    with pytest.raises(Exception, match="no role"):
        token_create(user=outsider, name="x")
