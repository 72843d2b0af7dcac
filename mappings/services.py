"""Writes for plans: building the engine snapshot and freezing versions."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError
from runs.engine.snapshot import (
    EntitySpec,
    FieldSpec,
    FilterSpec,
    LookupSpec,
    PlanSnapshot,
    RuleStepSpec,
)

from .models import Plan, PlanVersion
from .plan_content import content_hash, plan_document_data
from .selectors import plan_detail


def _entity_spec(entity) -> EntitySpec:
    fields = tuple(
        FieldSpec(
            target=f.target_column,
            sources=tuple(f.source_columns or ()),
            steps=tuple(
                RuleStepSpec(rule=s.rule, params=dict(s.params or {})) for s in f.steps.all()
            ),
            default=f.default_value,
            required=f.required,
        )
        for f in entity.fields.all()
    )
    return EntitySpec(
        name=entity.name,
        source_table=entity.source_table,
        target_table=entity.target_table,
        source_key=tuple(entity.source_key),
        target_key=entity.target_key,
        external_id=entity.external_id or None,
        load_mode=entity.load_mode,
        load_order=entity.load_order,
        fields=fields,
        filters=tuple(FilterSpec(**flt) for flt in entity.filters or ()),
        dedupe_on=tuple(entity.dedupe_on or ()),
        watermark_column=entity.watermark_column or None,
        delete_policy=entity.delete_policy,
        delete_mark_column=entity.delete_mark_column or None,
        delete_mark_value=entity.delete_mark_value or None,
    )


def plan_snapshot_build(*, plan: Plan, version: int = 0) -> PlanSnapshot:
    """The engine's frozen view of a plan's current state. Read-only; raises ApplicationError
    when the plan has no entity to migrate."""
    plan = plan_detail(slug=plan.slug)
    entities = tuple(_entity_spec(e) for e in plan.entities.all())
    if not entities:
        raise ApplicationError(f"Plan “{plan.name}” has no entity mapping yet.", field="entities")
    lookups = {
        lk.name: LookupSpec(
            name=lk.name,
            entries={e.key: e.value for e in lk.entries.all()},
            default=lk.default_value,
        )
        for lk in plan.lookups.all()
    }
    return PlanSnapshot(
        plan=plan.slug,
        version=version,
        entities=entities,
        lookups=lookups,
        batch_size=plan.batch_size,
        failure_threshold_pct=float(plan.failure_threshold_pct),
    )


@transaction.atomic
def plan_version_create(
    *, plan: Plan, user=None, note: str = "", rebaseline: bool = False
) -> PlanVersion:
    """Freeze the plan as a new immutable, hashed version, with the live source and target
    schema of the tables it uses. Transactional. When the latest version already holds
    exactly this content it is returned instead (idempotent), unless ``rebaseline`` asks for
    a new version built against the schema as it is now (after a reviewed schema change)."""
    from .services_drift import plan_schemas_capture

    Plan.objects.select_for_update().filter(pk=plan.pk).first()
    latest = plan.versions.order_by("-number").first()
    document = plan_document_data(plan=plan)
    content = content_hash(plan_snapshot_build(plan=plan, version=0), document)
    if latest is not None and snapshot_content(latest.snapshot) == content and not rebaseline:
        return latest
    number = (plan.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    snapshot = plan_snapshot_build(plan=plan, version=number)
    data = snapshot.to_dict() | {"_content": content, "_document": document}
    version = PlanVersion.objects.create(
        plan=plan,
        number=number,
        snapshot=data,
        content_hash=content_hash(snapshot, document),
        schemas=plan_schemas_capture(snapshot=snapshot, source=plan.source, target=plan.target),
        note=note,
        created_by=user,
    )
    audit_record(
        action=AuditAction.VERSION,
        actor=user,
        obj=version,
        after={"number": number, "hash": version.content_hash, "note": note},
    )
    return version


def snapshot_content(data: dict) -> str:
    """The content hash (as of version 0) a stored version stands for in the current rules
    format: an older-format snapshot is hashed as it is read (``PlanSnapshot.from_dict``), so
    a plan whose steps were migrated to explicit options still matches its version. Pure."""
    if "rules_format" in data or "entities" not in data:
        return data.get("_content", "")
    clean = {k: v for k, v in data.items() if not k.startswith("_")} | {"version": 0}
    return content_hash(PlanSnapshot.from_dict(clean), data.get("_document") or {})


def plan_content_hash(*, plan: Plan) -> str:
    """The hash of everything the plan says now (engine snapshot, notes, descriptions,
    validation rules, UAT cases), as stored in a version's ``_content``. Read-only."""
    return content_hash(plan_snapshot_build(plan=plan, version=0), plan_document_data(plan=plan))


def plan_current_dict(*, plan: Plan) -> dict:
    """The plan's current content in a version's snapshot layout (for diffs). Read-only;
    ApplicationError when the plan has no entity."""
    document = plan_document_data(plan=plan)
    return plan_snapshot_build(plan=plan, version=0).to_dict() | {"_document": document}


def plan_version_snapshot(version: PlanVersion) -> PlanSnapshot:
    """The engine snapshot stored in a version."""
    data = {k: v for k, v in version.snapshot.items() if not k.startswith("_")}
    return PlanSnapshot.from_dict(data)
