"""Plan → YAML text: deterministic (stable key and list order), no connection details or
secrets (systems by name only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import yaml

from runs.engine.rules import REGISTRY, RuleParamError, validate_params

from ..enums import (
    DeletePolicy,
)
from ..models import (
    Plan,
)
from ..selectors import plan_detail
from .nodes import FORMAT

# --------------------------------------------------------------------------- export


class _Dumper(yaml.SafeDumper):
    """Safe dumper: multi-line text as literal blocks, short text lists in flow style."""


_ODD_BREAKS = ("\x85", "\u2028", "\u2029")  # PyYAML folds these unescaped outside "..."


def _repr_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    if any(ch in data for ch in _ODD_BREAKS):
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _repr_list(dumper: yaml.SafeDumper, data: list) -> yaml.SequenceNode:
    flow = bool(data) and all(isinstance(v, str) and "\n" not in v for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(str, _repr_str)
_Dumper.add_representer(list, _repr_list)


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


def _step_out(step) -> dict:
    """Rule name, then the parameters that differ from the registry defaults, in declared order."""
    params = dict(step.params or {})
    try:
        checked = validate_params(step.rule, params)
    except RuleParamError:
        return {"rule": step.rule, **_sorted_json(params)}
    out: dict[str, Any] = {"rule": step.rule}
    for param in REGISTRY[step.rule].params:
        default = list(param.default) if param.type == "list" else param.default
        if param.required or checked[param.name] != default:
            out[param.name] = checked[param.name]
    return out


def _field_out(field) -> dict:
    out: dict[str, Any] = {
        "target": field.target_column,
        "sources": list(field.source_columns or []),
    }
    steps = sorted(field.steps.all(), key=lambda s: (s.position, s.id))
    out["steps"] = [_step_out(s) for s in steps]
    if field.default_value is not None:
        out["default"] = field.default_value
    if field.required:
        out["required"] = True
    if field.notes:
        out["notes"] = field.notes
    return out


def _entity_out(entity) -> dict:
    out: dict[str, Any] = {
        "name": entity.name,
        "source_table": entity.source_table,
        "target_table": entity.target_table,
        "source_key": list(entity.source_key or []),
        "target_key": entity.target_key,
        "external_id": entity.external_id,
        "load_mode": entity.load_mode,
        "load_order": entity.load_order,
        "filters": [
            {k: _sorted_json(f[k]) for k in ("column", "op", "value") if k in f}
            for f in entity.filters or []
        ],
        "dedupe_on": list(entity.dedupe_on or []),
        "watermark_column": entity.watermark_column,
        "notes": entity.notes,
    }
    if entity.delete_policy != DeletePolicy.IGNORE:  # older files (and readers) stay as they were
        out.update(
            delete_policy=entity.delete_policy,
            delete_mark_column=entity.delete_mark_column,
            delete_mark_value=entity.delete_mark_value,
        )
    fields = sorted(entity.fields.all(), key=lambda f: (f.position, f.id))
    out["fields"] = [_field_out(f) for f in fields]
    return out


def _lookup_out(lookup) -> dict:
    entries = {e.key: e.value for e in sorted(lookup.entries.all(), key=lambda e: e.key)}
    return {
        "name": lookup.name,
        "description": lookup.description,
        "default": lookup.default_value,
        "entries": entries,
    }


def _checks_out(plan: Plan) -> tuple[list, list]:
    rules = sorted(plan.validation_rules.all(), key=lambda r: (r.phase != "pre", r.name))
    cases = sorted(plan.uat_cases.all(), key=lambda c: (c.position, c.id))
    return (
        [
            {
                "name": r.name,
                "phase": r.phase,
                "kind": r.kind,
                "entity": r.entity,
                "column": r.column,
                "params": _sorted_json(r.params or {}),
                "severity": r.severity,
                "enabled": r.enabled,
            }
            for r in rules
        ],
        [{"title": c.title, "steps": c.steps, "expected_result": c.expected_result} for c in cases],
    )


def plan_export_dict(*, plan: Plan) -> dict:
    """The plan as plain data in the v1 layout (no secrets, no connection details). Read-only."""
    plan = plan_detail(slug=plan.slug)
    rules, cases = _checks_out(plan)
    milestones = sorted(plan.milestones.all(), key=lambda m: (m.position, m.start, m.id))
    return {
        "format": FORMAT,
        "plan": {
            "name": plan.name,
            "slug": plan.slug,
            "description": plan.description,
            "strategy": plan.strategy,
            "batch_size": plan.batch_size,
            "parallelism": plan.parallelism,
            "failure_threshold_pct": _number(Decimal(plan.failure_threshold_pct)),
            "rollback_on_threshold": plan.rollback_on_threshold,
        },
        "systems": {"source": plan.source.name, "target": plan.target.name},
        "lookups": [_lookup_out(lk) for lk in sorted(plan.lookups.all(), key=lambda x: x.name)],
        "entities": [
            _entity_out(e)
            for e in sorted(plan.entities.all(), key=lambda e: (e.load_order, e.name))
        ],
        "validation_rules": rules,
        "uat_cases": cases,
        "milestones": [
            {"phase": m.phase, "start": m.start, "end": m.end, "deliverable": m.deliverable}
            for m in milestones
        ],
    }


def plan_export_yaml(*, plan: Plan) -> str:
    """The plan as v1 YAML text; deterministic (export → import → export is byte-identical)."""
    return yaml.dump(
        plan_export_dict(plan=plan),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
        indent=2,
    )
