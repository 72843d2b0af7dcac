"""Reads for systems and plans, with their related rows fetched up front."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Count, Prefetch, QuerySet

from runs.engine.connectors import ColumnInfo, TableInfo
from runs.engine.connectors.base import type_family

from .models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    RuleStep,
    System,
)


def plan_list(*, archived: bool | None = None) -> QuerySet[Plan]:
    """Plans with source/target and entity counts: a constant number of queries. ``archived``
    False / True keeps only active / archived plans; None keeps all."""
    rows = (
        Plan.objects.select_related("source", "target", "owner")
        .annotate(entity_count=Count("entities", distinct=True))
        .order_by("name")
    )
    if archived is not None:
        rows = rows.filter(archived_at__isnull=not archived)
    return rows


def plan_detail(*, slug: str) -> Plan:
    """One plan with entities, fields and rule steps prefetched; raises Plan.DoesNotExist."""
    fields = FieldMapping.objects.prefetch_related("steps").order_by("position", "id")
    entities = EntityMapping.objects.prefetch_related(Prefetch("fields", queryset=fields))
    return (
        Plan.objects.select_related("source", "target", "owner")
        .prefetch_related(
            Prefetch("entities", queryset=entities),
            "milestones",
            "lookups__entries",
            "versions",
        )
        .get(slug=slug)
    )


def system_list() -> QuerySet[System]:
    """Systems with how many plans use them."""
    return System.objects.annotate(
        source_plans=Count("plans_as_source", distinct=True),
        target_plans=Count("plans_as_target", distinct=True),
    ).order_by("name")


# --------------------------------------------------------------------------- workbench reads

CONVERTING_RULES = {
    "integer": {"cast"},
    "numeric": {"cast"},
    "boolean": {"cast"},
    "date": {"parse_date"},
    "timestamp": {"parse_date"},
    "uuid": {"uuid_from_key"},
}
_TYPMOD = re.compile(r"\(\s*\d+(?:\s*,\s*\d+)?\s*\)")


def column_family(col: ColumnInfo) -> str:
    """The column's type family for the workbench's warnings: the engine's ``type_family`` of
    its type without typmod (``datetime(6)`` → timestamp, ``timestamptz``, ``timestamp(3) with
    time zone``), plus ``time`` for time / timetz columns. Pure."""
    name = _TYPMOD.sub("", (col.base_type or col.cast_type or col.data_type).lower()).strip()
    family = type_family(name)
    if family == "text" and (name in ("time", "timetz") or name.startswith("time with")):
        return "time"
    return family


def conversion_warning(
    col: ColumnInfo, sources: list[ColumnInfo], *, rules: set[str]
) -> str | None:
    """The grid's warning for a typed target column fed differently typed source columns by a
    chain without the converting step (date/timestamp: parse_date; time: none exists). Pure."""
    family = column_family(col)
    if family == "time":
        if rules & {"constant", "default_if_null"} or all(
            column_family(s) == "time" for s in sources
        ):
            return None
        return (
            f"Target is time ({col.data_type}); source is text — no rule parses times: "
            "the values must already read HH:MM[:SS]."
        )
    wanted = CONVERTING_RULES.get(family)
    if not wanted or rules & (wanted | {"reference_lookup"}):
        return None
    if any(column_family(s) != family for s in sources):
        return (
            f"Target is {family} ({col.data_type}); source is text — add a "
            f"{'/'.join(sorted(wanted))} step."
        )
    return None


@dataclass
class GridRow:
    """One target column of an entity's editor grid, with its mapping and warnings."""

    column: ColumnInfo
    field: FieldMapping | None
    required: bool
    warnings: list[str]


def entity_for_edit(*, plan: Plan, uuid) -> EntityMapping:
    """One entity of ``plan`` with fields and steps prefetched; raises DoesNotExist."""
    fields = FieldMapping.objects.prefetch_related("steps").order_by("position", "id")
    return (
        EntityMapping.objects.select_related("plan__source", "plan__target")
        .prefetch_related(Prefetch("fields", queryset=fields))
        .get(plan=plan, uuid=uuid)
    )


def column_required(col: ColumnInfo) -> bool:
    """A target column the load must fill: NOT NULL without default, not generated."""
    return not col.nullable and not col.has_default and not col.generated


def entity_grid(*, entity: EntityMapping, checks: bool = True) -> list[GridRow]:
    """Target columns (in order) with their field mapping and inline warnings."""
    from .schema import system_table

    target = system_table(entity.plan.target, entity.target_table)
    source = system_table(entity.plan.source, entity.source_table)
    by_target = {f.target_column: f for f in entity.fields.all()}
    rows = []
    for col in target.columns:
        field = by_target.pop(col.name, None)
        required = column_required(col)
        warnings = _warnings(entity, source, col, field, required) if checks else []
        rows.append(GridRow(col, field, required, warnings))
    for field in by_target.values():  # mapped columns the target no longer has
        missing = ColumnInfo(name=field.target_column, data_type="?")
        rows.append(GridRow(missing, field, False, ["Column missing from the target table."]))
    return rows


def _warnings(
    entity: EntityMapping,
    source: TableInfo,
    col: ColumnInfo,
    field: FieldMapping | None,
    required: bool,
) -> list[str]:
    if field is None:
        return ["Required target column is unmapped."] if required else []
    out: list[str] = []
    steps = list(field.steps.all())
    rules = {s.rule for s in steps}
    if (
        required
        and not field.source_columns
        and not field.default_value
        and not (rules & {"constant", "uuid_from_key", "default_if_null"})
    ):
        out.append("Required column has no source, default or constant.")
    if field.source_columns:
        src = [source.column(c) for c in field.source_columns if c in source.column_names]
        warning = conversion_warning(col, src, rules=rules) if src else None
        out.extend([warning] if warning else [])
    out.extend(_length_warning(entity, source, col, field, steps))
    out.extend(_lookup_warnings(entity, field, steps))
    return out


def _length_warning(
    entity: EntityMapping,
    source: TableInfo,
    col: ColumnInfo,
    field: FieldMapping,
    steps: list[RuleStep],
) -> list[str]:
    from .schema import count_longer

    limit = col.max_length
    if (
        not limit
        or len(field.source_columns) != 1
        or field.source_columns[0] not in source.column_names
    ):
        return []
    src = source.column(field.source_columns[0])
    if src.max_length is not None and src.max_length <= limit:
        return []
    for step in steps:
        if (
            step.rule == "truncate"
            and step.params.get("on_overflow", "truncate") == "truncate"
            and int(step.params.get("length") or 0) <= limit
        ):
            return []
    longer = count_longer(entity.plan.source, entity.source_table, src.name, limit)
    if not longer:
        return []
    return [
        f"{longer:,} source value(s) of {src.name} are longer than the target's {limit} "
        f"characters ({col.data_type})."
    ]


def _lookup_warnings(
    entity: EntityMapping, field: FieldMapping, steps: list[RuleStep]
) -> list[str]:
    from .schema import lookup_misses

    out = []
    for index, step in enumerate(steps):
        if step.rule != "value_map" or len(field.source_columns) != 1:
            continue
        misses, nulls, default = lookup_misses(
            entity=entity, field=field, steps=steps[:index], step=step
        )
        if nulls:
            out.append(_null_warning(step, field.source_columns[0], nulls, default))
        if misses:
            shown = ", ".join(f"“{v}” ×{n}" for v, n in misses[:8])
            more = f" and {len(misses) - 8} more" if len(misses) > 8 else ""
            total = sum(n for _, n in misses)
            out.append(
                f"Lookup “{step.params.get('lookup')}” has no entry for {total:,} "
                f"source value(s): {shown}{more}."
            )
    return out


def _null_warning(step: RuleStep, column: str, nulls: int, default: str | None) -> str:
    name = step.params.get("lookup")
    on_null = step.params.get("on_null", "default")
    if on_null == "fail":
        what = "those rows fail"
    elif on_null == "default" and default is not None:
        what = f"they get the table's default “{default}”"
    else:
        what = "they stay NULL" + (" (the table has no default)" if on_null == "default" else "")
    return (
        f"Lookup “{name}”: {nulls:,} source value(s) of {column} are NULL or blank; "
        f"with on_null “{on_null}” {what}."
    )


@dataclass
class HistoryEntry:
    when: object
    who: str
    what: str  # model label
    label: str  # the object as text
    action: str  # created | changed | deleted
    changes: list[tuple[str, object, object]]
    reason: str = ""


_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
_SKIP = {"id", "uuid", "updated_at", "created_at", "secret_ciphertext"}


def _history_querysets(plan: Plan) -> list[tuple[str, QuerySet]]:
    entity_ids = set(EntityMapping.history.filter(plan_id=plan.pk).values_list("id", flat=True))
    field_ids = set(
        FieldMapping.history.filter(entity_id__in=entity_ids).values_list("id", flat=True)
    )
    lookup_ids = set(LookupTable.history.filter(plan_id=plan.pk).values_list("id", flat=True))
    return [
        ("plan", Plan.history.filter(id=plan.pk)),
        ("milestone", Milestone.history.filter(plan_id=plan.pk)),
        ("entity", EntityMapping.history.filter(id__in=entity_ids)),
        ("field", FieldMapping.history.filter(id__in=field_ids)),
        ("rule step", RuleStep.history.filter(field_id__in=field_ids)),
        ("lookup table", LookupTable.history.filter(id__in=lookup_ids)),
        ("lookup entry", LookupEntry.history.filter(table_id__in=lookup_ids)),
    ]


def plan_history(*, plan: Plan, limit: int = 300) -> list[HistoryEntry]:
    """Every recorded edit of the plan and its parts, newest first, with field-level
    before/after (``diff_against`` the object's previous record; one query per model)."""
    entries: list[HistoryEntry] = []
    for label, qs in _history_querysets(plan):
        previous: dict[int, object] = {}
        for record in qs.select_related("history_user").order_by("history_date", "history_id"):
            prior = previous.get(record.id)
            changes = []
            if prior is not None and record.history_type == "~":
                delta = record.diff_against(prior)
                changes = [(c.field, c.old, c.new) for c in delta.changes if c.field not in _SKIP]
                if not changes:
                    previous[record.id] = record
                    continue
            previous[record.id] = record
            who = record.history_user.get_username() if record.history_user else "system"
            entries.append(
                HistoryEntry(
                    record.history_date,
                    who,
                    label,
                    _record_text(label, record),
                    _ACTIONS[record.history_type],
                    changes,
                    record.history_change_reason or "",
                )
            )
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries[:limit]


def _record_text(label: str, record) -> str:
    if label == "rule step":
        return f"step {record.position + 1}: {record.rule}"
    if label == "field":
        return f"→ {record.target_column}"
    if label == "lookup entry":
        return f"{record.key} → {record.value}"
    return str(getattr(record, "name", None) or getattr(record, "phase", None) or record.id)
