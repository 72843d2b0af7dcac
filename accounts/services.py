"""Creating, revoking and checking personal access tokens (every change audited)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError

from .models import PersonalAccessToken

PREFIX = "mpat_"
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most once a minute


def token_digest(key: str) -> str:
    """SHA-256 hex digest of a presented token (pure)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def token_create(*, user, name: str, request=None) -> tuple[PersonalAccessToken, str]:
    """Create a token for ``user``; returns it and the token text (shown once, never stored).
    Transactional and audited; raises ApplicationError for a missing or duplicate name."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the token a name (what it is for, e.g. “CI”).", field="name")
    if len(name) > 100:
        raise ApplicationError("The name is longer than 100 characters.", field="name")
    if not user.has_perm("mp.view"):
        raise PermissionDeniedError("Your account has no role: a token would grant nothing.")
    key = PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            token = PersonalAccessToken.objects.create(
                user=user, name=name, prefix=key[: len(PREFIX) + 6], digest=token_digest(key)
            )
            audit_record(
                action=AuditAction.CREATE,
                actor=user,
                obj=token,
                request=request,
                after={"name": name, "prefix": token.prefix, "user": user.username},
            )
    except IntegrityError:
        raise ApplicationError(
            f"You already have an active token named “{name}”.", field="name"
        ) from None
    return token, key


def token_revoke(*, token: PersonalAccessToken, user, request=None) -> PersonalAccessToken:
    """Revoke one of the user's own tokens (idempotent: revoking twice changes nothing).
    Audited; raises PermissionDeniedError for another user's token."""
    if token.user_id != user.pk:
        raise PermissionDeniedError("You can only revoke your own tokens.")
    with transaction.atomic():
        updated = PersonalAccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            audit_record(
                action=AuditAction.DELETE,
                actor=user,
                obj=token,
                request=request,
                before={"name": token.name, "prefix": token.prefix},
                after={"revoked": True},
            )
    token.refresh_from_db()
    return token


def token_authenticate(*, key: str) -> PersonalAccessToken | None:
    """The active token matching ``key`` with its (active) user, or None. Records the use
    (at most once a minute per token). Not transactional."""
    token = (
        PersonalAccessToken.objects.select_related("user")
        .filter(digest=token_digest(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
