"""What makes an edit of a plan valid: each check raises ApplicationError naming the field
at fault (tables and columns against the systems' schemas, rule parameters against the
registry and the plan); they write nothing. Used by ``services_edit``."""

from __future__ import annotations

from migration_planner.lib.errors import ApplicationError
from runs.engine.rules import REGISTRY, RuleParamError, validate_params

from .enums import DeletePolicy, LoadMode
from .models import EntityMapping, FieldMapping, Plan, System
from .schema import system_table

FRAME_RULES = tuple(name for name, rule in REGISTRY.items() if rule.accepts_frame)


def check_plan(data: dict) -> None:
    """The plan's systems are systems, in a role that allows the side they are picked for."""
    source, target = data.get("source"), data.get("target")
    if source is not None and not isinstance(source, System):
        raise ApplicationError("Pick a source system.", field="source")
    if target is not None and not isinstance(target, System):
        raise ApplicationError("Pick a target system.", field="target")
    if source is not None and source.role == "target":
        raise ApplicationError(f"“{source}” is registered as a target only.", field="source")
    if target is not None and target.role == "source":
        raise ApplicationError(f"“{target}” is registered as a source only.", field="target")


def check_entity(plan: Plan, entity: EntityMapping) -> None:
    """Tables, keys, external id and watermark exist in the schemas; upsert has an external id."""
    source = system_table(plan.source, entity.source_table)
    target = system_table(plan.target, entity.target_table)
    keys = entity.source_key if isinstance(entity.source_key, list) else []
    if not keys:
        raise ApplicationError("Name at least one source key column.", field="source_key")
    for col in keys:
        if col not in source.column_names:
            raise ApplicationError(
                f"Source key “{col}” is not a column of “{source.name}”.", field="source_key"
            )
    for label, col in (("Target key", entity.target_key), ("External id", entity.external_id)):
        if col and col not in target.column_names:
            raise ApplicationError(
                f"{label} “{col}” is not a column of “{target.name}”.",
                field="target_key" if label == "Target key" else "external_id",
            )
    if entity.load_mode == LoadMode.UPSERT and not entity.external_id:
        raise ApplicationError("Upsert needs an external id column.", field="external_id")
    if entity.watermark_column and entity.watermark_column not in source.column_names:
        raise ApplicationError(
            f"Watermark “{entity.watermark_column}” is not a source column.",
            field="watermark_column",
        )
    check_delete_policy(entity, target)


def check_delete_policy(entity: EntityMapping, target) -> None:
    """A known delete policy; "mark" names a column of the target table."""
    if entity.delete_policy not in DeletePolicy.values:
        raise ApplicationError(
            f"Unknown delete policy “{entity.delete_policy}”.", field="delete_policy"
        )
    if entity.delete_policy != DeletePolicy.MARK:
        return
    if not entity.delete_mark_column:
        raise ApplicationError(
            "The “mark” delete policy needs a target column to set.", field="delete_mark_column"
        )
    if entity.delete_mark_column not in target.column_names:
        raise ApplicationError(
            f"Mark column “{entity.delete_mark_column}” is not a column of “{target.name}”.",
            field="delete_mark_column",
        )


def check_field(entity: EntityMapping, field: FieldMapping) -> None:
    """The target column and every source column exist in their tables."""
    target = system_table(entity.plan.target, entity.target_table)
    if field.target_column not in target.column_names:
        raise ApplicationError(
            f"“{field.target_column}” is not a column of target table “{target.name}”.",
            field="target_column",
        )
    source = system_table(entity.plan.source, entity.source_table)
    for col in field.source_columns or []:
        if col not in source.column_names:
            raise ApplicationError(
                f"“{col}” is not a column of source table “{source.name}”.", field="source_columns"
            )


def check_chain(field: FieldMapping) -> None:
    """Several sources need a first step that combines them (concat / coalesce)."""
    if len(field.source_columns or []) < 2:
        return
    first = field.steps.order_by("position", "id").first()
    if first is None or first.rule not in FRAME_RULES:
        raise ApplicationError(
            f"“{field.target_column}” has several source columns: its first step must be "
            f"{' or '.join(FRAME_RULES)}.",
            field="steps",
        )


def checked_params(field: FieldMapping, rule: str, params: dict | None) -> dict:
    """The step's parameters validated against the registry; lookups and entities it names
    exist in the plan. Returns the checked parameters."""
    try:
        checked = validate_params(rule, params)
    except RuleParamError as exc:
        raise ApplicationError(
            f"{field.target_column} · {rule}: {exc.param} {exc.message}", field=exc.param
        ) from exc
    plan = field.entity.plan
    for param in REGISTRY[rule].params:
        value = checked.get(param.name)
        if param.type == "lookup" and not plan.lookups.filter(name=value).exists():
            raise ApplicationError(
                f"{field.target_column} · {rule}: no lookup table “{value}” in this plan.",
                field=param.name,
            )
        if param.type == "entity" and not plan.entities.filter(name=value).exists():
            raise ApplicationError(
                f"{field.target_column} · {rule}: no entity “{value}” in this plan.",
                field=param.name,
            )
    return checked


def with_defaults(rule: str, params: dict | None) -> dict:
    """New steps may omit required parameters that have an obvious first choice."""
    out = dict(params or {})
    for param in REGISTRY[rule].params:
        if param.name not in out and param.required and param.choices:
            out[param.name] = param.choices[0]
    return out
