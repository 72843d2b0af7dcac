"""Plan versions: readable diffs between snapshots, and reverting a plan to a version."""

from __future__ import annotations

import json
import uuid as uuid_mod
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError

from .models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Plan,
    PlanVersion,
    RuleStep,
)
from .profiling import NULL_TEXT
from .services_edit import EDIT, _delete, _save, plan_touch, require_capability
from .yaml_io import _replace_checks


@dataclass
class Change:
    kind: str  # added | removed | changed
    what: str  # "entity accounts", "field accounts.name", "lookup us-states", ...
    details: list[str] = field(default_factory=list)


def _show(value: Any) -> str:
    """A value in a diff: JSON, but a null is NULL (as every page shows it)."""
    if value is None:
        return NULL_TEXT
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _steps_text(steps: list[dict]) -> str:
    parts = []
    for step in steps:
        params = sorted((step.get("params") or {}).items())
        parts.append(f"{step['rule']}({', '.join(f'{k}={_show(v)}' for k, v in params)})")
    return " → ".join(parts) or "(copy)"


def _dict_changes(old: dict, new: dict, skip: tuple[str, ...]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key in skip or old.get(key) == new.get(key):
            continue
        if key == "steps":
            out.append(
                f"steps: {_steps_text(old.get(key) or [])} ⇒ {_steps_text(new.get(key) or [])}"
            )
        else:
            out.append(f"{key}: {_show(old.get(key))} ⇒ {_show(new.get(key))}")
    return out


def _keyed(items: list[dict], key: str) -> dict[str, dict]:
    return {item[key]: item for item in items}


def snapshot_diff(old: dict, new: dict) -> list[Change]:
    """What changed from snapshot ``old`` to ``new``: entities, fields (with their steps),
    lookups and plan settings added/removed/changed (pure)."""
    changes: list[Change] = []
    settings = _dict_changes(
        old, new, ("entities", "lookups", "version", "plan", "_content", "_document")
    )
    if settings:
        changes.append(Change("changed", "plan settings", settings))
    changes.extend(_document_changes(old.get("_document") or {}, new.get("_document") or {}))
    old_e, new_e = _keyed(old.get("entities", []), "name"), _keyed(new.get("entities", []), "name")
    for name in sorted(set(old_e) | set(new_e)):
        a, b = old_e.get(name), new_e.get(name)
        if a is None or b is None:
            changes.append(Change("added" if a is None else "removed", f"entity {name}"))
            continue
        details = _dict_changes(a, b, ("fields",))
        if details:
            changes.append(Change("changed", f"entity {name}", details))
        changes.extend(_field_changes(name, a.get("fields", []), b.get("fields", [])))
    old_l, new_l = old.get("lookups", {}), new.get("lookups", {})
    for name in sorted(set(old_l) | set(new_l)):
        a, b = old_l.get(name), new_l.get(name)
        if a is None or b is None:
            changes.append(Change("added" if a is None else "removed", f"lookup {name}"))
        elif a != b:
            changes.append(Change("changed", f"lookup {name}", _lookup_changes(a, b)))
    return changes


def _document_changes(old: dict, new: dict) -> list[Change]:
    """Notes, descriptions, validation rules and UAT cases that differ (pure)."""
    labels = {
        "description": "plan description",
        "entity_notes": "entity notes",
        "field_notes": "field notes",
        "lookup_descriptions": "lookup descriptions",
    }
    out = [
        Change("changed", label, [f"{_show(old.get(key))} ⇒ {_show(new.get(key))}"])
        for key, label in labels.items()
        if old.get(key) != new.get(key)
    ]
    for key, ident, label in (
        ("validation_rules", "name", "validation rule"),
        ("uat_cases", "title", "UAT case"),
    ):
        a, b = _keyed(old.get(key, []), ident), _keyed(new.get(key, []), ident)
        for name in sorted(set(a) | set(b)):
            if name not in a or name not in b:
                out.append(Change("added" if name not in a else "removed", f"{label} {name}"))
            elif a[name] != b[name]:
                out.append(
                    Change("changed", f"{label} {name}", _dict_changes(a[name], b[name], ()))
                )
    return out


def _field_changes(entity: str, old: list[dict], new: list[dict]) -> list[Change]:
    out = []
    a_by, b_by = _keyed(old, "target"), _keyed(new, "target")
    for target in sorted(set(a_by) | set(b_by)):
        a, b = a_by.get(target), b_by.get(target)
        what = f"field {entity}.{target}"
        if a is None or b is None:
            shown = b if a is None else a
            out.append(
                Change(
                    "added" if a is None else "removed",
                    what,
                    [
                        f"{' + '.join(shown.get('sources') or []) or 'no source'} · "
                        f"{_steps_text(shown.get('steps') or [])}"
                    ],
                )
            )
        elif a != b:
            out.append(Change("changed", what, _dict_changes(a, b, ())))
    return out


def _lookup_changes(a: dict, b: dict) -> list[str]:
    ea, eb = a.get("entries", {}), b.get("entries", {})
    out = [f"+ {k} → {eb[k]}" for k in sorted(set(eb) - set(ea))]
    out += [f"− {k} → {ea[k]}" for k in sorted(set(ea) - set(eb))]
    out += [f"{k}: {ea[k]} ⇒ {eb[k]}" for k in sorted(set(ea) & set(eb)) if ea[k] != eb[k]]
    if a.get("default") != b.get("default"):
        out.append(f"default: {_show(a.get('default'))} ⇒ {_show(b.get('default'))}")
    return out


def _revived_uuid(model, **match) -> uuid_mod.UUID:
    """The uuid the last deleted row of ``model`` matching ``match`` had (so its old URLs answer
    again once a revert brings it back), or a fresh one."""
    gone = model.history.filter(history_type="-", **match).order_by("-history_date")
    for old in gone.values_list("uuid", flat=True)[:3]:
        if not model.objects.filter(uuid=old).exists():
            return old
    return uuid_mod.uuid4()


def _apply(obj: Any, values: dict, user) -> None:
    """Set ``values`` on ``obj`` and save it (recorded in history) only if something changed."""
    changed = obj.pk is None
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    if changed:
        _save(obj, user)


def _drop_entity(entity: EntityMapping, user) -> None:
    for fm in entity.fields.all():
        for step in fm.steps.all():
            _delete(step, user)
        _delete(fm, user)
    _delete(entity, user)


def _restore_lookups(plan: Plan, lookups: dict, descriptions: dict | None, user) -> None:
    live = {t.name: t for t in plan.lookups.all()}
    for name, table in live.items():
        if name not in lookups:
            for entry in table.entries.all():
                _delete(entry, user)
            _delete(table, user)
    for name, lk in sorted(lookups.items()):
        table = live.get(name) or LookupTable(
            plan=plan, name=name, uuid=_revived_uuid(LookupTable, plan_id=plan.pk, name=name)
        )
        _apply(
            table,
            {
                "default_value": lk.get("default"),
                "description": table.description
                if descriptions is None
                else descriptions.get(name, ""),
            },
            user,
        )
        wanted = lk.get("entries", {})
        entries = {e.key: e for e in table.entries.all()}
        for key, entry in entries.items():
            if key not in wanted:
                _delete(entry, user)
        for key, value in sorted(wanted.items()):
            _apply(entries.get(key) or LookupEntry(table=table, key=key), {"value": value}, user)


def _restore_steps(fm: FieldMapping, steps: list[dict], user) -> None:
    live = list(fm.steps.order_by("position", "id"))
    for step in live[len(steps) :]:
        _delete(step, user)
    for index, s in enumerate(steps):
        step = live[index] if index < len(live) else RuleStep(field=fm)
        _apply(
            step,
            {"position": index, "rule": s["rule"], "params": dict(s.get("params") or {})},
            user,
        )


def _restore_entity(
    plan: Plan, data: dict, user, doc: dict, live: dict[str, EntityMapping]
) -> None:
    name = data["name"]
    entity = live.get(name) or EntityMapping(
        plan=plan, name=name, uuid=_revived_uuid(EntityMapping, plan_id=plan.pk, name=name)
    )
    notes = doc["entity_notes"].get(name, "") if "entity_notes" in doc else entity.notes
    _apply(
        entity,
        {
            "source_table": data["source_table"],
            "target_table": data["target_table"],
            "source_key": list(data["source_key"]),
            "target_key": data["target_key"],
            "external_id": data.get("external_id") or "",
            "load_mode": data.get("load_mode", "insert"),
            "load_order": data.get("load_order", 0),
            "filters": list(data.get("filters") or []),
            "dedupe_on": list(data.get("dedupe_on") or []),
            "watermark_column": data.get("watermark_column") or "",
            "delete_policy": data.get("delete_policy") or "ignore",
            "delete_mark_column": data.get("delete_mark_column") or "",
            "delete_mark_value": data.get("delete_mark_value") or "",
            "notes": notes,
        },
        user,
    )
    field_notes = doc["field_notes"].get(name, {}) if "field_notes" in doc else None
    fields = {f["target"]: f for f in data.get("fields", [])}
    live_fields = {fm.target_column: fm for fm in entity.fields.all()}
    for target, fm in live_fields.items():
        if target not in fields:
            for step in fm.steps.all():
                _delete(step, user)
            _delete(fm, user)
    for position, (target, f) in enumerate(fields.items()):
        fm = live_fields.get(target) or FieldMapping(entity=entity, target_column=target)
        _apply(
            fm,
            {
                "position": position,
                "source_columns": list(f.get("sources") or []),
                "default_value": f.get("default"),
                "required": f.get("required", False),
                "notes": fm.notes if field_notes is None else field_notes.get(target, ""),
            },
            user,
        )
        _restore_steps(fm, f.get("steps", []), user)


@transaction.atomic
def plan_version_revert(*, plan: Plan, version: PlanVersion, user) -> Plan:
    """Rewrite the plan from ``version``: entities, fields, steps, lookups and settings, and
    (for versions that hold them) notes, lookup descriptions, the description, validation
    rules and UAT cases. Rows are updated in place (entities and lookups matched by name,
    fields by target column, steps by position), so their ids and URLs stay stable; an entity
    or lookup the version brings back gets the id it had before it was deleted. Transactional;
    every row change is recorded in history; the plan returns to draft; idempotent."""
    require_capability(user, EDIT)
    if version.plan_id != plan.pk:
        raise ApplicationError("That version belongs to another plan.", field="version")
    plan = plan_touch(plan=plan, user=user)
    snap = version.snapshot
    doc = snap.get("_document") or {}
    _restore_lookups(plan, snap.get("lookups", {}), doc.get("lookup_descriptions"), user)
    live = {e.name: e for e in plan.entities.all()}
    wanted = {e["name"] for e in snap.get("entities", [])}
    for name, entity in live.items():
        if name not in wanted:
            _drop_entity(entity, user)
    for entity in snap.get("entities", []):
        _restore_entity(plan, entity, user, doc, live)
    if "_document" in snap:
        _replace_checks(plan, doc.get("validation_rules", []), doc.get("uat_cases", []))
        plan.description = doc.get("description", plan.description)
    plan.batch_size = snap.get("batch_size", plan.batch_size)
    plan.failure_threshold_pct = snap.get("failure_threshold_pct", plan.failure_threshold_pct)
    plan._change_reason = f"Reverted to version {version.number}"
    _save(plan, user)
    audit_record(
        action=AuditAction.UPDATE,
        actor=user,
        obj=plan,
        after={"reverted_to": version.number, "hash": version.content_hash},
    )
    return plan
