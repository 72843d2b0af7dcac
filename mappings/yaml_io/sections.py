"""The document's sections (plan, systems, lookups, entities, checks, milestones), read and
checked whole into a ``_Doc`` before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import yaml

from migration_planner.lib.errors import ApplicationError
from runs.engine.rules import REGISTRY, RuleParamError, validate_params
from runs.engine.snapshot import upgrade_params

from ..enums import (
    PRE_KINDS,
    DeletePolicy,
    LoadMode,
    PlanStrategy,
    Severity,
    ValidationKind,
    ValidationPhase,
)
from ..models import (
    System,
)
from .nodes import (
    _FILTER_OPS,
    _TEXT_PARAMS,
    FORMAT,
    FORMATS,
    Path,
    _bool,
    _date,
    _int,
    _json,
    _kind,
    _list,
    _mapping,
    _params,
    _path_text,
    _Reader,
    _text,
    _texts,
    _unique,
)

# --------------------------------------------------------------------------- sections

_TOP = (
    "format",
    "plan",
    "systems",
    "lookups",
    "entities",
    "validation_rules",
    "uat_cases",
    "milestones",
)
_PLAN = (
    "name",
    "slug",
    "description",
    "strategy",
    "batch_size",
    "parallelism",
    "failure_threshold_pct",
    "rollback_on_threshold",
)
_ENTITY = (
    "name",
    "source_table",
    "target_table",
    "source_key",
    "target_key",
    "external_id",
    "load_mode",
    "load_order",
    "filters",
    "dedupe_on",
    "watermark_column",
    "delete_policy",
    "delete_mark_column",
    "delete_mark_value",
    "notes",
    "fields",
)
_FIELD = ("target", "sources", "steps", "default", "required", "notes")
_RULE = ("name", "phase", "kind", "entity", "column", "params", "severity", "enabled")
_FRAME_RULES = tuple(name for name, rule in REGISTRY.items() if rule.accepts_frame)


@dataclass
class _Doc:
    """A checked document: model field values, ready to write."""

    plan: dict
    source: System
    target: System
    lookups: list[tuple[dict, dict[str, str]]] = field(default_factory=list)
    entities: list[tuple[dict, list[tuple[dict, list[tuple[str, dict]]]]]] = field(
        default_factory=list
    )
    validation_rules: list[dict] = field(default_factory=list)
    uat_cases: list[dict] = field(default_factory=list)
    milestones: list[dict] = field(default_factory=list)


def _read_plan(r: _Reader, d: Any) -> dict:
    p: Path = ("plan",)
    _mapping(r, d, p, _PLAN, ("name", "slug"))
    threshold = d.get("failure_threshold_pct", 10)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 <= threshold <= 100
    ):
        r.fail((*p, "failure_threshold_pct"), "must be a number from 0 to 100")
    return {
        "name": _text(r, d, p, "name", max_len=150, blank=False),
        "slug": _text(r, d, p, "slug", max_len=150, slug=True),
        "description": _text(r, d, p, "description"),
        "strategy": _text(
            r, d, p, "strategy", choices=tuple(PlanStrategy.values), default=PlanStrategy.BIG_BANG
        ),
        "batch_size": _int(r, d, p, "batch_size", default=10_000, lo=1, hi=10_000_000),
        "parallelism": _int(r, d, p, "parallelism", default=2, lo=1, hi=64),
        "failure_threshold_pct": Decimal(str(threshold)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        ),
        "rollback_on_threshold": _bool(r, d, p, "rollback_on_threshold", default=False),
    }


def _read_systems(r: _Reader, d: Any) -> tuple[System, System]:
    p: Path = ("systems",)
    _mapping(r, d, p, ("source", "target"), ("source", "target"))
    found = []
    for role in ("source", "target"):
        name = _text(r, d, p, role, blank=False, max_len=100)
        system = System.objects.filter(name=name).first()
        if system is None:
            r.fail(
                (*p, role),
                f"unknown system '{name}': register it first (systems are "
                "matched by name; the file never carries connection details)",
            )
        found.append(system)
    return found[0], found[1]


def _read_entries(r: _Reader, path: Path) -> dict[str, str]:
    """Entries as written: keys and values are the scalars' own text (``01`` stays ``01``)."""
    node = r.node(path)
    if not isinstance(node, yaml.MappingNode):
        r.fail(path, "must be a mapping of key: value")
    entries = {}
    for key, value in node.value:
        for part in (key, value):
            if (
                not isinstance(part, yaml.ScalarNode)
                or len(part.value) > 255
                or "\x00" in part.value
            ):
                mark = part.start_mark
                raise ApplicationError(
                    f"line {mark.line + 1}, column {mark.column + 1}: {_path_text(path)}: "
                    "keys and values must be text of at most 255 characters"
                )
        entries[key.value] = value.value
    return entries


def _read_lookups(r: _Reader, data: dict) -> list[tuple[dict, dict[str, str]]]:
    out, seen = [], {}
    for i, d in enumerate(_list(r, data, (), "lookups")):
        p: Path = ("lookups", i)
        _mapping(r, d, p, ("name", "description", "default", "entries"), ("name",))
        name = _text(r, d, p, "name", max_len=100, slug=True)
        _unique(r, seen, name, (*p, "name"), "lookup name")
        values = {
            "name": name,
            "description": _text(r, d, p, "description"),
            "default_value": _text(r, d, p, "default", max_len=255, default=None),
        }
        entries = _read_entries(r, (*p, "entries")) if d.get("entries") else {}
        out.append((values, entries))
    return out


def _read_filters(r: _Reader, d: dict, path: Path) -> list[dict]:
    out = []
    for i, f in enumerate(_list(r, d, path, "filters")):
        p = (*path, "filters", i)
        _mapping(r, f, p, ("column", "op", "value"), ("column", "op"))
        item = {
            "column": _text(r, f, p, "column", max_len=128, blank=False),
            "op": _text(r, f, p, "op", choices=_FILTER_OPS),
        }
        if "value" in f:
            item["value"] = _json(r, f["value"], (*p, "value"))
        out.append(item)
    return out


def _read_step(r: _Reader, d: Any, p: Path, names: dict[str, set[str]]) -> tuple[str, dict]:
    if not isinstance(d, dict):
        r.fail(p, f"must be a mapping with a 'rule' key, got {_kind(d)}")
    _mapping(r, d, p, tuple(d), ("rule",))
    rule = d["rule"]
    if not isinstance(rule, str) or rule not in REGISTRY:
        r.fail(p, f"unknown rule type '{rule}' (known: {', '.join(REGISTRY)})")
    given = upgrade_params(rule, {k: v for k, v in d.items() if k != "rule"}, r.rules_format)
    types = {param.name: param.type for param in REGISTRY[rule].params}
    for key, value in given.items():  # `value: 0` for a text parameter means the text "0"
        if types.get(key) in _TEXT_PARAMS and isinstance(value, int | float | bool):
            given[key] = r.raw((*p, key))
        _json(r, given[key], (*p, key))
    try:
        params = validate_params(rule, given)
    except RuleParamError as exc:
        if exc.param in given:
            r.fail((*p, exc.param), exc.message, at_key="unknown parameter" in exc.message)
        r.fail(p, f"{rule}: {exc.param} {exc.message}")
    for param in REGISTRY[rule].params:
        kind = {"lookup": "lookup table", "entity": "entity"}.get(param.type)
        if kind and params[param.name] not in names[param.type]:
            r.fail((*p, param.name), f"no {kind} '{params[param.name]}' in this plan")
    return rule, params


def _read_field(r: _Reader, d: Any, p: Path, names: dict[str, set[str]]) -> tuple[dict, list]:
    _mapping(r, d, p, _FIELD, ("target",))
    default = d.get("default")
    values = {
        "target_column": _text(r, d, p, "target", max_len=128, blank=False),
        "source_columns": _texts(r, d, p, "sources"),
        "default_value": (
            r.raw((*p, "default"))
            if isinstance(default, int | float | bool)
            else _text(r, d, p, "default", default=None)
        ),
        "required": _bool(r, d, p, "required", default=False),
        "notes": _text(r, d, p, "notes"),
    }
    steps = [
        _read_step(r, s, (*p, "steps", i), names) for i, s in enumerate(_list(r, d, p, "steps"))
    ]
    if len(values["source_columns"]) > 1 and (not steps or steps[0][0] not in _FRAME_RULES):
        r.fail(
            (*p, "steps"),
            f"several source columns need a first step that combines them "
            f"({' or '.join(_FRAME_RULES)})",
        )
    return values, steps


def _read_entity(r: _Reader, d: Any, p: Path, names: dict[str, set[str]]) -> tuple[dict, list]:
    _mapping(r, d, p, _ENTITY, ("name", "source_table", "target_table", "source_key"))
    values = {
        "name": _text(r, d, p, "name", max_len=100, slug=True),
        "source_table": _text(r, d, p, "source_table", max_len=128, blank=False),
        "target_table": _text(r, d, p, "target_table", max_len=128, blank=False),
        "source_key": _texts(r, d, p, "source_key", nonempty=True),
        "target_key": _text(r, d, p, "target_key", max_len=128, blank=False, default="id"),
        "external_id": _text(r, d, p, "external_id", max_len=128) or "",
        "load_mode": _text(
            r, d, p, "load_mode", choices=tuple(LoadMode.values), default=LoadMode.INSERT
        ),
        "load_order": _int(r, d, p, "load_order", default=0, lo=0, hi=32767),
        "filters": _read_filters(r, d, p),
        "dedupe_on": _texts(r, d, p, "dedupe_on"),
        "watermark_column": _text(r, d, p, "watermark_column", max_len=128) or "",
        "delete_policy": _text(
            r,
            d,
            p,
            "delete_policy",
            choices=tuple(DeletePolicy.values),
            default=DeletePolicy.IGNORE,
        ),
        "delete_mark_column": _text(r, d, p, "delete_mark_column", max_len=128) or "",
        "delete_mark_value": _text(r, d, p, "delete_mark_value", max_len=200) or "",
        "notes": _text(r, d, p, "notes"),
    }
    if values["delete_policy"] == DeletePolicy.MARK and not values["delete_mark_column"]:
        r.fail((*p, "delete_mark_column"), "delete_policy mark needs a delete_mark_column")
    if values["load_mode"] == LoadMode.UPSERT and not values["external_id"]:
        r.fail((*p, "load_mode"), "upsert needs an external_id column")
    fields, seen = [], {}
    for i, f in enumerate(_list(r, d, p, "fields")):
        field_values, steps = _read_field(r, f, (*p, "fields", i), names)
        _unique(
            r, seen, field_values["target_column"], (*p, "fields", i, "target"), "target column"
        )
        fields.append((field_values, steps))
    return values, fields


def _read_entities(r: _Reader, data: dict, lookups: list) -> list:
    items = _list(r, data, (), "entities")
    names = {
        "lookup": {values["name"] for values, _ in lookups},
        "entity": {
            e["name"] for e in items if isinstance(e, dict) and isinstance(e.get("name"), str)
        },
    }
    out, seen = [], {}
    for i, d in enumerate(items):
        values, fields = _read_entity(r, d, ("entities", i), names)
        _unique(r, seen, values["name"], ("entities", i, "name"), "entity name")
        out.append((values, fields))
    return out


def _read_rules(r: _Reader, data: dict) -> list[dict]:
    out, seen = [], {}
    for i, d in enumerate(_list(r, data, (), "validation_rules")):
        p: Path = ("validation_rules", i)
        _mapping(r, d, p, _RULE, ("name", "phase", "kind", "entity"))
        values = {
            "name": _text(r, d, p, "name", max_len=150, blank=False),
            "phase": _text(r, d, p, "phase", choices=tuple(ValidationPhase.values)),
            "kind": _text(r, d, p, "kind", choices=tuple(ValidationKind.values)),
            "entity": _text(r, d, p, "entity", max_len=100, blank=False),
            "column": _text(r, d, p, "column", max_len=128),
            "params": _params(r, d.get("params"), (*p, "params")),
            "severity": _text(
                r, d, p, "severity", choices=tuple(Severity.values), default=Severity.BLOCKING
            ),
            "enabled": _bool(r, d, p, "enabled", default=True),
        }
        _unique(r, seen, values["name"], (*p, "name"), "validation rule name")
        if (values["phase"] == ValidationPhase.PRE) != (values["kind"] in PRE_KINDS):
            r.fail((*p, "kind"), f"'{values['kind']}' is not a {values['phase']} check")
        out.append(values)
    return out


def _read_cases(r: _Reader, data: dict) -> list[dict]:
    out = []
    for i, d in enumerate(_list(r, data, (), "uat_cases")):
        p: Path = ("uat_cases", i)
        _mapping(r, d, p, ("title", "steps", "expected_result"), ("title",))
        out.append(
            {
                "title": _text(r, d, p, "title", max_len=200, blank=False),
                "steps": _text(r, d, p, "steps"),
                "expected_result": _text(r, d, p, "expected_result"),
            }
        )
    return out


def _read_milestones(r: _Reader, data: dict) -> list[dict]:
    out = []
    for i, d in enumerate(_list(r, data, (), "milestones")):
        p: Path = ("milestones", i)
        _mapping(r, d, p, ("phase", "start", "end", "deliverable"), ("phase", "start", "end"))
        values = {
            "phase": _text(r, d, p, "phase", max_len=100, blank=False),
            "start": _date(r, d, p, "start"),
            "end": _date(r, d, p, "end"),
            "deliverable": _text(r, d, p, "deliverable", max_len=255),
            "position": i,
        }
        if values["end"] < values["start"]:
            r.fail((*p, "end"), "must not be before start")
        out.append(values)
    return out


def _read_document(data: Any, r: _Reader) -> _Doc:
    _mapping(r, data, (), _TOP, ("format", "plan", "systems", "entities"))
    if data["format"] not in FORMATS:
        r.fail(("format",), f"unsupported format '{data['format']}' (expected '{FORMAT}')")
    r.rules_format = FORMATS[data["format"]]
    source, target = _read_systems(r, data["systems"])
    doc = _Doc(
        plan=_read_plan(r, data["plan"]),
        source=source,
        target=target,
        lookups=_read_lookups(r, data),
    )
    doc.entities = _read_entities(r, data, doc.lookups)
    doc.validation_rules = _read_rules(r, data)
    doc.uat_cases = _read_cases(r, data)
    doc.milestones = _read_milestones(r, data)
    return doc
