"""Log-ins, log-outs and failed log-ins go to the audit log."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.exceptions import ObjectDoesNotExist
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from mappings.signals import plan_content_changed

from .audit import audit_record
from .enums import AuditAction


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    audit_record(action=AuditAction.LOGIN, actor=user, request=request, object_repr=user.username)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(
            action=AuditAction.LOGOUT, actor=user, request=request, object_repr=user.username
        )


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    name = str(credentials.get("username", ""))[:150]
    audit_record(action=AuditAction.LOGIN_FAILED, request=request, object_repr=name)


# ---------------------------------------------------------------- mapping edits: audit + void

PLAN_ONLY_FIELDS = {"status", "updated_at"}


def _plan_id(instance) -> int | None:
    """The plan a mapping object belongs to (None when its parents are already gone)."""
    from mappings.models import FieldMapping, LookupEntry, Plan, RuleStep

    try:
        if isinstance(instance, Plan):
            return instance.pk
        if isinstance(instance, FieldMapping):
            return instance.entity.plan_id
        if isinstance(instance, RuleStep):
            return instance.field.entity.plan_id
        if isinstance(instance, LookupEntry):
            return instance.table.plan_id
        return instance.plan_id
    except ObjectDoesNotExist:
        return None


def _changes(instance) -> tuple[dict | None, dict | None, object]:
    """(before, after, actor) of the latest save, from simple-history's diff."""
    record = instance.history.first()
    if record is None:
        return None, None, None
    previous = record.prev_record
    if previous is None:
        return (
            None,
            {f.attname: _plain(getattr(record, f.attname)) for f in instance._meta.concrete_fields},
            record.history_user,
        )
    delta = record.diff_against(previous)
    before = {c.field: _plain(c.old) for c in delta.changes}
    after = {c.field: _plain(c.new) for c in delta.changes}
    return before, after, record.history_user


def _plain(value):
    return value if isinstance(value, str | int | float | bool | list | dict | None) else str(value)


def _mapping_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    from .signoff import signoffs_void

    before, after, actor = _changes(instance)
    if not created and after is not None and set(after) <= PLAN_ONLY_FIELDS:
        return  # a status change or a bare touch is not an edit of the plan's content
    if not created and not after:
        return
    audit_record(
        action=AuditAction.CREATE if created else AuditAction.UPDATE,
        actor=actor,
        obj=instance,
        before=before,
        after=after,
    )
    plan_id = _plan_id(instance)
    if plan_id is not None:
        who = getattr(actor, "username", "") or "someone"
        signoffs_void(
            plan_id=plan_id, reason=f"{sender._meta.verbose_name} “{instance}” edited by {who}"
        )


def _mapping_deleted(sender, instance, **kwargs) -> None:
    from .signoff import signoffs_void

    record = instance.history.first()
    actor = record.history_user if record is not None else None
    audit_record(
        action=AuditAction.DELETE, actor=actor, obj=instance, before={"repr": str(instance)[:200]}
    )
    plan_id = _plan_id(instance)
    if plan_id is not None:
        signoffs_void(plan_id=plan_id, reason=f"{sender._meta.verbose_name} “{instance}” deleted")


def mapping_receivers_connect() -> None:
    """Connect audit + sign-off voiding to every model a plan version is made of."""
    from mappings.models import (
        EntityMapping,
        FieldMapping,
        LookupEntry,
        LookupTable,
        Milestone,
        Plan,
        RuleStep,
    )

    for model in (Plan, Milestone, EntityMapping, FieldMapping, RuleStep, LookupTable, LookupEntry):
        post_save.connect(_mapping_saved, sender=model, dispatch_uid=f"mp-edit-{model.__name__}")
        post_delete.connect(_mapping_deleted, sender=model, dispatch_uid=f"mp-del-{model.__name__}")


mapping_receivers_connect()


@receiver(plan_content_changed, dispatch_uid="mp-plan-content-changed")
def _plan_content_changed(sender, plan_id: int, reason: str, **kwargs) -> None:
    from .signoff import signoffs_void

    signoffs_void(plan_id=plan_id, reason=reason)
