"""Writes for connected systems: create/edit/delete (uploads: services_uploads)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from migration_planner.lib.roles import is_admin

from .destinations import system_destination_check
from .enums import SystemEnvironment, SystemKind
from .models import Plan, System
from .services_edit import require_capability
from .signals import plan_content_changed

MANAGE = "mp.manage_systems"
SYSTEM_FIELDS = (
    "name",
    "kind",
    "environment",
    "role",
    "host",
    "port",
    "database",
    "username",
    "path",
    "description",
    "options",
)


def _check_system(system: System) -> None:
    if system.kind == SystemKind.POSTGRESQL and not (system.host and system.database):
        raise ApplicationError(
            "A PostgreSQL system needs a host and a database name.",
            field="host" if not system.host else "database",
        )
    if system.kind == SystemKind.MYSQL:
        if not (system.host and system.database):
            raise ApplicationError(
                "A MySQL system needs a host and a database name.",
                field="host" if not system.host else "database",
            )
        if system.role != "source":
            raise ApplicationError(
                "A MySQL system can only be a source: set its role to "
                "“Source” (runs load into PostgreSQL or SQLite).",
                field="role",
            )
    if system.kind == SystemKind.SQLITE and not system.path:
        raise ApplicationError(
            "An SQLite system needs the path of its database file.", field="path"
        )


CONNECTION_FIELDS = ("kind", "host", "port", "database", "username", "path", "options")


def _changed(before: dict | None, system: System) -> set[str]:
    if before is None:
        return set()
    return {k for k in SYSTEM_FIELDS if before[k] != str(getattr(system, k))}


def _production_gate(
    *, user, system: System, created: bool, changed: set[str], was_production: bool, secret: str
) -> None:
    """Only an admin sets a system's environment, or edits where a prod system points."""
    if is_admin(user):
        return
    if "environment" in changed or (created and system.environment == SystemEnvironment.PROD):
        raise PermissionDeniedError("Only an admin may set a system's environment.")
    if was_production and (changed & set(CONNECTION_FIELDS) or secret):
        raise PermissionDeniedError(
            f"“{system.name}” is a production system: only an admin may change its "
            "connection settings or secret."
        )


@transaction.atomic
def system_save(*, user, data: dict, system: System | None = None, secret: str = "") -> System:
    """Create (``system`` None) or update a system; audited; voids the sign-offs of plans using it.

    A blank ``secret`` keeps the stored one only while the destination (kind, host, port,
    database, user, path) is unchanged; otherwise the stored secret is cleared. Only an admin
    sets the environment or edits a production system's connection. Transactional; raises
    PermissionDeniedError or ApplicationError (field named)."""
    require_capability(user, MANAGE)
    created = system is None
    system = system or System(created_by=user)
    # What is stored, not the instance: a ModelForm's is_valid() has already written the
    # posted values into the instance it was given (the gate would see no change).
    stored = None if created else System.objects.get(pk=system.pk)
    was_production = not created and stored.is_production
    before = None if created else {k: str(getattr(stored, k)) for k in SYSTEM_FIELDS}
    had_secret = False if created else stored.has_secret
    for key, value in data.items():
        if key in SYSTEM_FIELDS:
            setattr(system, key, "" if value is None and key != "port" else value)
    changed = _changed(before, system)
    _production_gate(
        user=user,
        system=system,
        created=created,
        changed=changed,
        was_production=was_production,
        secret=secret,
    )
    _check_system(system)
    system_destination_check(system)
    if secret:
        system.set_secret(secret)
    try:
        with transaction.atomic():
            system.save()
    except IntegrityError as exc:
        raise ApplicationError(
            f"A system called “{system.name}” already exists.", field="name"
        ) from exc
    cleared = had_secret and not secret and not system.has_secret
    after = {k: str(getattr(system, k)) for k in SYSTEM_FIELDS} | {"secret": bool(secret)}
    if cleared:
        after["secret_cleared"] = True
    audit_record(
        action=AuditAction.CREATE if created else AuditAction.UPDATE,
        actor=user,
        obj=system,
        before=before,
        after=after,
    )
    if not created and (changed or secret):
        _void_plans_using(system, f"system “{system.name}” edited by {user.username}")
    return system


def _void_plans_using(system: System, reason: str) -> None:
    for plan_id in Plan.objects.filter(Q(source=system) | Q(target=system)).values_list(
        "pk", flat=True
    ):
        plan_content_changed.send(sender=System, plan_id=plan_id, reason=reason)


@transaction.atomic
def system_delete(*, system: System, user) -> None:
    """Delete a system; refused (naming the plans) while any plan uses it."""
    require_capability(user, MANAGE)
    names = list(
        Plan.objects.filter(Q(source=system) | Q(target=system))
        .order_by("name")
        .values_list("name", flat=True)
    )
    if names:
        raise ApplicationError(
            f"“{system.name}” is used by plan(s): {', '.join(names)}. Change those plans first.",
            field="plans",
        )
    audit_record(
        action=AuditAction.DELETE,
        actor=user,
        obj=system,
        before={"name": system.name, "kind": system.kind},
    )
    system.delete()
