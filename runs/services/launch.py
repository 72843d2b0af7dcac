"""Launching a run: freeze the plan version, check the production gate, queue the start."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count

from mappings.models import Plan, System
from mappings.services import plan_version_create, plan_version_snapshot
from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from migration_planner.lib.roles import refusal_text
from runs.enums import RunMode, RunStatus
from runs.models import Run

from .dispatch import enqueue_run_start, enqueue_sync
from .hooks import approved_versions
from .leases import table_lease_acquire
from .state import run_entities


def _signed_off(version) -> bool:
    return approved_versions(plan=version.plan).filter(pk=version.pk).exists()


def _check_launch(*, user, plan: Plan, target: System, mode: str, scope_entity: str) -> None:
    if user is not None and not user.has_perm("mp.launch_run"):
        raise PermissionDeniedError(refusal_text("mp.launch_run"))
    if mode not in RunMode.values:
        raise ApplicationError(f"Unknown run mode “{mode}”.", field="mode")
    if target.role == "source":
        raise ApplicationError(f"“{target.name}” is registered as a source only.", field="target")
    if mode == RunMode.SYNC:
        from .cdc import sync_check_source, sync_check_systems

        sync_check_systems(source=plan.source, target=target)
        sync_check_source(source=plan.source)
        inserting = sorted(plan.entities.exclude(load_mode="upsert").values_list("name", flat=True))
        if inserting:
            raise ApplicationError(
                "A sync replays updates, so every entity must load with upsert on an external "
                f"id; these load with insert: {', '.join(inserting)}.",
                field="mode",
            )
    if scope_entity and not plan.entities.filter(name=scope_entity).exists():
        raise ApplicationError(f"The plan has no entity “{scope_entity}”.", field="scope_entity")
    empty = [
        e.name
        for e in plan.entities.annotate(n=Count("fields")).filter(n=0)
        if scope_entity in ("", e.name)
    ]
    if empty:
        raise ApplicationError(
            f"Entity “{empty[0]}” maps no field yet: add at least one field mapping (or remove "
            "the entity) before running.",
            field="entities",
            extra={"entities": empty},
        )
    production = target.is_production and mode != RunMode.DRY_RUN
    if production and user is not None and not user.has_perm("mp.launch_production_run"):
        raise PermissionDeniedError("Only an operator may launch a run on a production target.")


@transaction.atomic
def run_create(
    *,
    plan: Plan,
    user,
    target: System | None = None,
    mode: str = RunMode.DRY_RUN,
    scope_entity: str = "",
) -> Run:
    """Freeze the plan's current version, lease the target tables (not for a dry run) and
    queue a run. Transactional; raises PermissionDeniedError (role), TableBusy (another run
    writes one of the tables: 409) or ApplicationError (bad input, production gate closed,
    schema drift of a column the plan uses: nothing is queued or written)."""
    target = target or plan.target
    _check_launch(user=user, plan=plan, target=target, mode=mode, scope_entity=scope_entity)
    if plan.archived_at is not None:
        raise ApplicationError(f"“{plan.name}” is archived: restore it before launching a run.")
    version = plan_version_create(plan=plan, user=user, note="frozen for a run")
    if target.is_production and mode != RunMode.DRY_RUN and not _signed_off(version):
        raise ApplicationError(
            f"“{target.name}” is a production target: version {version.number} of this plan "
            "must be signed off by an approver first.",
            field="target",
            extra={"signoff_required": True, "version": version.number},
        )
    entities = plan_version_snapshot(version).entities_in_load_order()
    if scope_entity:
        entities = [e for e in entities if e.name == scope_entity]
    # imported here: mappings.schema loads pandas, which the Celery parent must not
    from mappings.services_drift import plan_drift_refuse

    plan_drift_refuse(version=version, target=target, entities=entities)
    run = Run.objects.create(
        plan=plan,
        version=version,
        target=target,
        mode=mode,
        scope_entity=scope_entity,
        launched_by=user,
        status=RunStatus.QUEUED,
    )
    if mode != RunMode.DRY_RUN:  # one writer per target table; a dry run writes nothing
        tables = [e.target_table for e in run_entities(run)]
        table_lease_acquire(run=run, tables=tables, purpose=mode, user=user)
    audit_record(
        action=AuditAction.RUN_START,
        actor=user,
        obj=run,
        after={
            "mode": mode,
            "target": target.name,
            "version": version.number,
            "scope": scope_entity,
        },
    )
    if mode == RunMode.SYNC:
        enqueue_sync(run.pk)
    else:
        enqueue_run_start(run.pk)
    return run
