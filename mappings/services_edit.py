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
from runs.engine.rules import REGISTRY, RuleParamError, validate_params

from .enums import DeletePolicy, LoadMode, PlanStatus
from .models import EntityMapping, FieldMapping, Milestone, Plan, RuleStep, System
from .schema import system_table

EDIT = "mp.edit_plan"
PLAN_FIELDS = ("name", "description", "source", "target", "strategy", "batch_size",
               "parallelism", "failure_threshold_pct", "rollback_on_threshold")
ENTITY_FIELDS = ("name", "source_table", "target_table", "source_key", "target_key",
                 "external_id", "load_mode", "load_order", "watermark_column", "delete_policy",
                 "delete_mark_column", "delete_mark_value", "notes")
FIELD_FIELDS = ("target_column", "source_columns", "default_value", "required", "notes")
FRAME_RULES = tuple(name for name, rule in REGISTRY.items() if rule.accepts_frame)


def require_capability(user, capability: str) -> None:
    """Raise PermissionDeniedError unless the user's role grants ``capability``."""
    if user is None or not user.has_perm(capability):
        raise PermissionDeniedError(f"Your role does not allow this ({capability}).")


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
            field="status")
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


def _check_plan(data: dict) -> None:
    source, target = data.get("source"), data.get("target")
    if source is not None and not isinstance(source, System):
        raise ApplicationError("Pick a source system.", field="source")
    if target is not None and not isinstance(target, System):
        raise ApplicationError("Pick a target system.", field="target")
    if source is not None and source.role == "target":
        raise ApplicationError(f"“{source}” is registered as a target only.", field="source")
    if target is not None and target.role == "source":
        raise ApplicationError(f"“{target}” is registered as a source only.", field="target")


def plan_name_check(*, name: str, exclude: Plan | None = None) -> None:
    """Raise ApplicationError (field ``name``) when another plan has this name (any case)."""
    clash = Plan.objects.filter(name__iexact=(name or "").strip())
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ApplicationError(f"A plan called “{name.strip()}” already exists: plan names "
                               "are unique.", field="name")


@transaction.atomic
def plan_create(*, user, data: dict) -> Plan:
    """Create a draft plan owned by ``user``; ApplicationError on bad systems."""
    require_capability(user, EDIT)
    _check_plan(data)
    plan_name_check(name=data.get("name", ""))
    plan = Plan(owner=user, slug=unique_slug(data["name"]),
                **{k: v for k, v in data.items() if k in PLAN_FIELDS})
    _save(plan, user)
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, user, data: dict) -> Plan:
    """Change a plan's settings (name, systems, strategy, batch size...)."""
    require_capability(user, EDIT)
    _check_plan(data)
    if "name" in data:
        plan_name_check(name=data["name"], exclude=plan)
    plan = plan_touch(plan=plan, user=user)
    for key, value in data.items():
        if key in PLAN_FIELDS:
            setattr(plan, key, value)
    _save(plan, user)
    return plan


@transaction.atomic
def milestone_save(*, plan: Plan, user, data: dict, milestone: Milestone | None = None
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


def _check_entity(plan: Plan, entity: EntityMapping) -> None:
    source = system_table(plan.source, entity.source_table)
    target = system_table(plan.target, entity.target_table)
    keys = entity.source_key if isinstance(entity.source_key, list) else []
    if not keys:
        raise ApplicationError("Name at least one source key column.", field="source_key")
    for col in keys:
        if col not in source.column_names:
            raise ApplicationError(f"Source key “{col}” is not a column of “{source.name}”.",
                                   field="source_key")
    for label, col in (("Target key", entity.target_key), ("External id", entity.external_id)):
        if col and col not in target.column_names:
            raise ApplicationError(f"{label} “{col}” is not a column of “{target.name}”.",
                                   field="target_key" if label == "Target key" else "external_id")
    if entity.load_mode == LoadMode.UPSERT and not entity.external_id:
        raise ApplicationError("Upsert needs an external id column.", field="external_id")
    if entity.watermark_column and entity.watermark_column not in source.column_names:
        raise ApplicationError(f"Watermark “{entity.watermark_column}” is not a source column.",
                               field="watermark_column")
    _check_delete_policy(entity, target)


def _check_delete_policy(entity: EntityMapping, target) -> None:
    if entity.delete_policy not in DeletePolicy.values:
        raise ApplicationError(f"Unknown delete policy “{entity.delete_policy}”.",
                               field="delete_policy")
    if entity.delete_policy != DeletePolicy.MARK:
        return
    if not entity.delete_mark_column:
        raise ApplicationError("The “mark” delete policy needs a target column to set.",
                               field="delete_mark_column")
    if entity.delete_mark_column not in target.column_names:
        raise ApplicationError(f"Mark column “{entity.delete_mark_column}” is not a column of "
                               f"“{target.name}”.", field="delete_mark_column")


def _entity_save(plan: Plan, entity: EntityMapping, user) -> EntityMapping:
    _check_entity(plan, entity)
    try:
        with transaction.atomic():
            _save(entity, user)
    except IntegrityError as exc:
        raise ApplicationError(f"An entity called “{entity.name}” already exists in this plan.",
                               field="name") from exc
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


def _check_field(entity: EntityMapping, field: FieldMapping) -> None:
    target = system_table(entity.plan.target, entity.target_table)
    if field.target_column not in target.column_names:
        raise ApplicationError(f"“{field.target_column}” is not a column of target table "
                               f"“{target.name}”.", field="target_column")
    source = system_table(entity.plan.source, entity.source_table)
    for col in field.source_columns or []:
        if col not in source.column_names:
            raise ApplicationError(f"“{col}” is not a column of source table “{source.name}”.",
                                   field="source_columns")


def _check_chain(field: FieldMapping) -> None:
    """Several sources need a first step that combines them (concat / coalesce)."""
    if len(field.source_columns or []) < 2:
        return
    first = field.steps.order_by("position", "id").first()
    if first is None or first.rule not in FRAME_RULES:
        raise ApplicationError(
            f"“{field.target_column}” has several source columns: its first step must be "
            f"{' or '.join(FRAME_RULES)}.", field="steps")


@transaction.atomic
def field_create(*, entity: EntityMapping, user, data: dict) -> FieldMapping:
    """Map a target column; several sources get a first ``concat`` step automatically."""
    require_capability(user, EDIT)
    plan_touch(plan=entity.plan, user=user)
    last = entity.fields.aggregate(n=Max("position"))["n"]
    field = FieldMapping(entity=entity, position=0 if last is None else last + 1,
                         **{k: v for k, v in data.items() if k in FIELD_FIELDS})
    field.source_columns = list(field.source_columns or [])
    _check_field(entity, field)
    if entity.fields.filter(target_column=field.target_column).exists():
        raise ApplicationError(f"“{field.target_column}” is already mapped.",
                               field="target_column")
    _save(field, user)
    if len(field.source_columns) > 1:
        _save(RuleStep(field=field, position=0, rule="concat",
                       params=validate_params("concat", {})), user)
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
    _check_field(field.entity, field)
    if len(field.source_columns) > 1 and not field.steps.filter(rule__in=FRAME_RULES).exists():
        order = list(field.steps.order_by("position", "id"))
        first = RuleStep(field=field, position=0, rule="concat",
                         params=validate_params("concat", {}))
        _save(first, user)
        _renumber(field, user, [first, *order])
    _check_chain(field)
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


def _checked_params(field: FieldMapping, rule: str, params: dict | None) -> dict:
    try:
        checked = validate_params(rule, params)
    except RuleParamError as exc:
        raise ApplicationError(f"{field.target_column} · {rule}: {exc.param} {exc.message}",
                               field=exc.param) from exc
    plan = field.entity.plan
    for param in REGISTRY[rule].params:
        value = checked.get(param.name)
        if param.type == "lookup" and not plan.lookups.filter(name=value).exists():
            raise ApplicationError(f"{field.target_column} · {rule}: no lookup table “{value}” "
                                   "in this plan.", field=param.name)
        if param.type == "entity" and not plan.entities.filter(name=value).exists():
            raise ApplicationError(f"{field.target_column} · {rule}: no entity “{value}” in "
                                   "this plan.", field=param.name)
    return checked


def _renumber(field: FieldMapping, user, order: list[RuleStep]) -> None:
    for position, step in enumerate(order):
        if step.position != position:
            step.position = position
            _save(step, user)


@transaction.atomic
def step_add(
    *, field: FieldMapping, user, rule: str, params: dict | None = None,
    position: int | None = None,
) -> RuleStep:
    """Append a rule step (parameters validated against the registry and the plan), or insert
    it at ``position`` (0-based; later steps move down). Transactional."""
    require_capability(user, EDIT)
    if rule not in REGISTRY:
        raise ApplicationError(f"Unknown rule type “{rule}”.", field="rule")
    plan_touch(plan=field.entity.plan, user=user)
    checked = _checked_params(field, rule, _with_defaults(rule, params))
    last = field.steps.aggregate(n=Max("position"))["n"]
    step = RuleStep(field=field, rule=rule, params=checked,
                    position=0 if last is None else last + 1)
    _save(step, user)
    if position is not None:
        order = [s for s in field.steps.order_by("position", "id") if s.pk != step.pk]
        order.insert(max(0, min(position, len(order))), step)
        _renumber(field, user, order)
    _check_chain(field)
    return step


def _with_defaults(rule: str, params: dict | None) -> dict:
    """New steps may omit required parameters that have an obvious first choice."""
    out = dict(params or {})
    for param in REGISTRY[rule].params:
        if param.name not in out and param.required and param.choices:
            out[param.name] = param.choices[0]
    return out


@transaction.atomic
def step_update(*, step: RuleStep, user, params: dict) -> RuleStep:
    """Replace a step's parameters (validated)."""
    require_capability(user, EDIT)
    plan_touch(plan=step.field.entity.plan, user=user)
    step.params = _checked_params(step.field, step.rule, params)
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
    _check_chain(step.field)
    return step


@transaction.atomic
def step_delete(*, step: RuleStep, user) -> None:
    """Remove a step from its chain."""
    require_capability(user, EDIT)
    field = step.field
    plan_touch(plan=field.entity.plan, user=user)
    _delete(step, user)
    _renumber(field, user, list(field.steps.order_by("position", "id")))
    _check_chain(field)
