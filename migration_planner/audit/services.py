"""Recording audit events (the write service every app uses)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import AuditEvent

SECRET_KEYS = {"secret", "password", "secret_ciphertext", "token"}


def _scrub(data: dict | None) -> dict | None:
    if data is None:
        return None
    return {k: ("***" if k in SECRET_KEYS else v) for k, v in data.items()}


def audit_record(
    *,
    action: str,
    actor=None,
    obj: Any = None,
    before: dict | None = None,
    after: dict | None = None,
    request: HttpRequest | None = None,
    object_repr: str | None = None,
) -> AuditEvent:
    """Write one audit event; secrets in before/after are masked. Not transactional on its own."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_name=getattr(actor, "username", "") or "",
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(getattr(obj, "uuid", None) or getattr(obj, "pk", "") or ""),
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:255],
        before=_scrub(before),
        after=_scrub(after),
        ip=(request.META.get("REMOTE_ADDR") if request is not None else None),
    )
