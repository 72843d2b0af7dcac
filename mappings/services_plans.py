"""A plan's lifecycle beyond editing: clone, archive / restore, delete (refused while runs
exist). Each service checks the edit capability, is transactional and writes an audit event."""

from __future__ import annotations

import yaml
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError

from .models import Plan
from .services_edit import EDIT, plan_name_check, require_capability, unique_slug
from .yaml_io import plan_export_dict, plan_import_yaml


@transaction.atomic
def plan_clone(*, plan: Plan, user, name: str) -> Plan:
    """A new draft plan with everything ``plan`` says (mappings, rule chains, lookups, notes,
    validation rules, UAT cases, milestones) under ``name``; no versions, runs or sign-offs.
    Transactional; raises ApplicationError (duplicate or empty name)."""
    require_capability(user, EDIT)
    if not name.strip():
        raise ApplicationError("Give the copy a name.", field="name")
    plan_name_check(name=name)
    data = plan_export_dict(plan=plan)
    data["plan"]["name"], data["plan"]["slug"] = name.strip(), unique_slug(name)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    copy = plan_import_yaml(text=text, user=user, allow_unknown_schema=True)
    audit_record(action=AuditAction.CREATE, actor=user, obj=copy, after={"cloned_from": plan.slug})
    return copy


@transaction.atomic
def plan_archive(*, plan: Plan, user, archived: bool = True) -> Plan:
    """Archive (or, ``archived=False``, restore) a plan: it leaves the plan lists and accepts
    no new runs; its versions, runs and reports stay readable. Idempotent."""
    require_capability(user, EDIT)
    before = plan.archived_at
    plan.archived_at = (plan.archived_at or timezone.now()) if archived else None
    if plan.archived_at != before:
        plan._history_user = user
        plan.save(update_fields=["archived_at", "updated_at"])
        audit_record(
            action=AuditAction.UPDATE,
            actor=user,
            obj=plan,
            before={"archived": before is not None},
            after={"archived": plan.archived_at is not None},
        )
    return plan


@transaction.atomic
def plan_delete(*, plan: Plan, user) -> None:
    """Delete a plan that never ran (with its mappings, lookups, versions and checks). Raises
    ApplicationError while runs or sign-offs refer to it: archive it instead."""
    require_capability(user, EDIT)
    runs = plan.runs.count()
    if runs:
        raise ApplicationError(
            f"“{plan.name}” has {runs} run{'s' if runs != 1 else ''}: a plan with runs cannot "
            "be deleted (their ledger and reports must stay). Archive it instead."
        )
    name, slug = plan.name, plan.slug
    try:
        plan.delete()
    except ProtectedError as exc:
        raise ApplicationError(
            f"“{name}” has sign-offs or runs that refer to it: archive it instead."
        ) from exc
    audit_record(
        action=AuditAction.DELETE,
        actor=user,
        object_repr=f"plan {slug}",
        before={"name": name, "slug": slug},
    )
