"""Writes for plans, milestones, entity mappings, field mappings and rule steps.

Every service checks the caller's capability, runs in one transaction, records history with
the acting user and returns a signed-off / in-review plan to draft (``plan_touch``).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.text import slugify

from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from migration_planner.lib.roles import refusal_text
from runs.engine.rules import REGISTRY, validate_params

from .edit_checks import (
    FRAME_RULES,
    check_chain,
    check_entity,
    check_field,
    check_plan,
    checked_params,
    with_defaults,
)
from .enums import PlanStatus
from .models import EntityMapping, FieldMapping, Milestone, Plan, RuleStep

EDIT = "mp.edit_plan"
PLAN_FIELDS = (
    "name",
    "description",
    "source",
    "target",
    "strategy",
    "batch_size",
    "parallelism",
    "failure_threshold_pct",
    "rollback_on_threshold",
)
ENTITY_FIELDS = (
    "name",
    "source_table",
    "target_table",
    "source_key",
    "target_key",
    "external_id",
    "load_mode",
    "load_order",
    "watermark_column",
    "delete_policy",
    "delete_mark_column",
    "delete_mark_value",
    "notes",
)
FIELD_FIELDS = ("target_column", "source_columns", "default_value", "required", "notes")


def require_capability(user, capability: str) -> None:
    """Raise PermissionDeniedError unless the user's role grants ``capability``."""
    if user is None or not user.has_perm(capability):
        raise PermissionDeniedError(refusal_text(capability))


def _save(obj: Any, user) -> None:
    obj._history_user = user if getattr(user, "is_authenticated", False) else None
    obj.save()


def _delete(obj: Any, user) -> None:
    obj._history_user = user if getattr(user, "is_authenticated", False) else None
    obj.delete()


def plan_touch(*, plan: Plan, user) -> Plan:
    """Mark the plan edited: any edit returns a signed-off or in-review plan to draft."""
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    if plan.status != PlanStatus.DRAFT:
        plan.status = PlanStatus.DRAFT
        plan._change_reason = "Edited after review/sign-off: back to draft"
    _save(plan, user)
    return plan


@transaction.atomic
def plan_status_set(*, plan: Plan, user, status: str) -> Plan:
    """Move a plan between draft and in review (``mp.edit_plan``). Signed off is refused here:
    only ``signoff_decide`` (approver, four eyes, audited SignOff) sets it."""
    if status not in PlanStatus.values:
        raise ApplicationError(f"Unknown status “{status}”.", field="status")
    require_capability(user, EDIT)
    if status == PlanStatus.SIGNED_OFF:
        raise ApplicationError(
            "A plan is signed off only through the sign-off (an approver, four eyes, bound to "
            "a version and a run) on the plan's Sign-off page.",
            field="status",
        )
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    plan.status = status
    _save(plan, user)
    return plan


def unique_slug(name: str) -> str:
    """A slug for ``name`` no plan uses yet (``-2``, ``-3``... appended)."""
    base = slugify(name)[:140] or "plan"
    slug, n = base, 2
    while Plan.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def plan_name_check(*, name: str, exclude: Plan | None = None) -> None:
    """Raise ApplicationError (field ``name``) when another plan has this name (any case)."""
    clash = Plan.objects.filter(name__iexact=(name or "").strip())
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ApplicationError(
            f"A plan called “{name.strip()}” already exists: plan names are unique.", field="name"
        )


@transaction.atomic
def plan_create(*, user, data: dict) -> Plan:
    """Create a draft plan owned by ``user``; ApplicationError on bad systems."""
    require_capability(user, EDIT)
    check_plan(data)
    plan_name_check(name=data.get("name", ""))
    plan = Plan(
        owner=user,
        slug=unique_slug(data["name"]),
        **{k: v for k, v in data.items() if k in PLAN_FIELDS},
    )
    _save(plan, user)
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, user, data: dict) -> Plan:
    """Change a plan's settings (name, systems, strategy, batch size...)."""
    require_capability(user, EDIT)
    check_plan(data)
    if "name" in data:
        plan_name_check(name=data["name"], exclude=plan)
    plan = plan_touch(plan=plan, user=user)
    for key, value in data.items():
        if key in PLAN_FIELDS:
            setattr(plan, key, value)
    _save(plan, user)
    return plan


@transaction.atomic
def milestone_save(
    *, plan: Plan, user, data: dict, milestone: Milestone | None = None
) -> Milestone:
    """Create (``milestone`` None) or update a milestone; end must not precede start."""
    require_capability(user, EDIT)
    if data["end"] < data["start"]:
        raise ApplicationError("The end date is before the start date.", field="end")
    plan_touch(plan=plan, user=user)
    if milestone is None:
        last = plan.milestones.aggregate(n=Max("position"))["n"]
        milestone = Milestone(plan=plan, position=0 if last is None else last + 1)
    for key in ("phase", "start", "end", "deliverable"):
        setattr(milestone, key, data.get(key, getattr(milestone, key)))
    _save(milestone, user)
    return milestone


@transaction.atomic
def milestone_delete(*, milestone: Milestone, user) -> None:
    """Delete a milestone."""
    require_capability(user, EDIT)
    plan_touch(plan=milestone.plan, user=user)
    _delete(milestone, user)


# --------------------------------------------------------------------------- entities


def _entity_save(plan: Plan, entity: EntityMapping, user) -> EntityMapping:
    check_entity(plan, entity)
    try:
        with transaction.atomic():
            _save(entity, user)
    except IntegrityError as exc:
        raise ApplicationError(
            f"An entity called “{entity.name}” already exists in this plan.", field="name"
        ) from exc
    return entity


@transaction.atomic
def entity_create(*, plan: Plan, user, data: dict) -> EntityMapping:
    """Add an entity mapping; tables and columns are checked against both schemas."""
    require_capability(user, EDIT)
    plan_touch(plan=plan, user=user)
    values = {k: v for k, v in data.items() if k in ENTITY_FIELDS}
    if not values.get("name"):
        values["name"] = slugify(values.get("target_table", ""))[:100] or "entity"
    if "load_order" not in values:
        last = plan.entities.aggregate(n=Max("load_order"))["n"]
        values["load_order"] = 0 if last is None else last + 1
    return _entity_save(plan, EntityMapping(plan=plan, **values), user)


@transaction.atomic
def entity_update(*, entity: EntityMapping, user, data: dict) -> EntityMapping:
    """Change an entity mapping's tables, keys, load mode or order."""
    require_capability(user, EDIT)
    plan_touch(plan=entity.plan, user=user)
    for key, value in data.items():
        if key in ENTITY_FIELDS:
            setattr(entity, key, value)
    return _entity_save(entity.plan, entity, user)


@transaction.atomic
def entity_delete(*, entity: EntityMapping, user) -> None:
    """Delete an entity with its field mappings and steps (each recorded in history)."""
    require_capability(user, EDIT)
    plan_touch(plan=entity.plan, user=user)
    for field in entity.fields.all():
        _field_delete(field, user)
    _delete(entity, user)


# --------------------------------------------------------------------------- fields


@transaction.atomic
def field_create(*, entity: EntityMapping, user, data: dict) -> FieldMapping:
    """Map a target column; several sources get a first ``concat`` step automatically."""
    require_capability(user, EDIT)
    plan_touch(plan=entity.plan, user=user)
    last = entity.fields.aggregate(n=Max("position"))["n"]
    field = FieldMapping(
        entity=entity,
        position=0 if last is None else last + 1,
        **{k: v for k, v in data.items() if k in FIELD_FIELDS},
    )
    field.source_columns = list(field.source_columns or [])
    check_field(entity, field)
    if entity.fields.filter(target_column=field.target_column).exists():
        raise ApplicationError(f"“{field.target_column}” is already mapped.", field="target_column")
    _save(field, user)
    if len(field.source_columns) > 1:
        _save(
            RuleStep(field=field, position=0, rule="concat", params=validate_params("concat", {})),
            user,
        )
    return field


@transaction.atomic
def field_update(*, field: FieldMapping, user, data: dict) -> FieldMapping:
    """Change a field's sources, default, required flag or notes."""
    require_capability(user, EDIT)
    plan_touch(plan=field.entity.plan, user=user)
    for key, value in data.items():
        if key in FIELD_FIELDS and key != "target_column":
            setattr(field, key, value)
    field.source_columns = list(field.source_columns or [])
    check_field(field.entity, field)
    if len(field.source_columns) > 1 and not field.steps.filter(rule__in=FRAME_RULES).exists():
        order = list(field.steps.order_by("position", "id"))
        first = RuleStep(
            field=field, position=0, rule="concat", params=validate_params("concat", {})
        )
        _save(first, user)
        _renumber(field, user, [first, *order])
    check_chain(field)
    _save(field, user)
    return field


def _field_delete(field: FieldMapping, user) -> None:
    for step in field.steps.all():
        _delete(step, user)
    _delete(field, user)


@transaction.atomic
def field_delete(*, field: FieldMapping, user) -> None:
    """Unmap a target column (its steps go too)."""
    require_capability(user, EDIT)
    plan_touch(plan=field.entity.plan, user=user)
    _field_delete(field, user)


# --------------------------------------------------------------------------- rule steps


def _renumber(field: FieldMapping, user, order: list[RuleStep]) -> None:
    for position, step in enumerate(order):
        if step.position != position:
            step.position = position
            _save(step, user)


@transaction.atomic
def step_add(
    *,
    field: FieldMapping,
    user,
    rule: str,
    params: dict | None = None,
    position: int | None = None,
) -> RuleStep:
    """Append a rule step (parameters validated against the registry and the plan), or insert
    it at ``position`` (0-based; later steps move down). Transactional."""
    require_capability(user, EDIT)
    if rule not in REGISTRY:
        raise ApplicationError(f"Unknown rule type “{rule}”.", field="rule")
    plan_touch(plan=field.entity.plan, user=user)
    checked = checked_params(field, rule, with_defaults(rule, params))
    last = field.steps.aggregate(n=Max("position"))["n"]
    step = RuleStep(
        field=field, rule=rule, params=checked, position=0 if last is None else last + 1
    )
    _save(step, user)
    if position is not None:
        order = [s for s in field.steps.order_by("position", "id") if s.pk != step.pk]
        order.insert(max(0, min(position, len(order))), step)
        _renumber(field, user, order)
    check_chain(field)
    return step


@transaction.atomic
def step_update(*, step: RuleStep, user, params: dict) -> RuleStep:
    """Replace a step's parameters (validated)."""
    require_capability(user, EDIT)
    plan_touch(plan=step.field.entity.plan, user=user)
    step.params = checked_params(step.field, step.rule, params)
    _save(step, user)
    return step


@transaction.atomic
def step_move(*, step: RuleStep, user, direction: str) -> RuleStep:
    """Move a step one place up or down the chain."""
    require_capability(user, EDIT)
    plan_touch(plan=step.field.entity.plan, user=user)
    order = list(step.field.steps.order_by("position", "id"))
    index = next(i for i, s in enumerate(order) if s.pk == step.pk)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
        _renumber(step.field, user, order)
    check_chain(step.field)
    return step


@transaction.atomic
def step_delete(*, step: RuleStep, user) -> None:
    """Remove a step from its chain."""
    require_capability(user, EDIT)
    field = step.field
    plan_touch(plan=field.entity.plan, user=user)
    _delete(step, user)
    _renumber(field, user, list(field.steps.order_by("position", "id")))
    check_chain(field)
