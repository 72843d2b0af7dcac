"""Plan YAML export and import (format ``migration-planner/v2``, documented in docs/plan-yaml.md;
``v1`` files still import, their steps read with the rule options they meant).

Export is deterministic (stable key and list order), so export → import → export is
byte-identical. Import reads with ``yaml.safe_load`` only, checks the whole document before it
writes anything, and reports every problem with the line and column of the offending node.
Systems are referenced by name only: connection details and secrets never enter the file.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NoReturn

import yaml
from django.db import transaction
from simple_history.utils import bulk_create_with_history

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError
from runs.engine.rules import REGISTRY, RuleParamError, validate_params
from runs.engine.snapshot import RULES_FORMAT, upgrade_params

from .enums import (
    PRE_KINDS,
    DeletePolicy,
    LoadMode,
    PlanStatus,
    PlanStrategy,
    Severity,
    ValidationKind,
    ValidationPhase,
)
from .models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    RuleStep,
    System,
    UATTestCase,
    ValidationRule,
)
from .selectors import plan_detail
from .yaml_check import SchemaProblem, schema_problems, schema_refusal

FORMAT = "migration-planner/v2"
# v1 files predate explicit `trim.collapse_inner` / `value_map.on_null`: read as they meant.
FORMATS = {"migration-planner/v1": 1, FORMAT: RULES_FORMAT}
MAX_BYTES = 5 * 1024 * 1024


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
    out: dict[str, Any] = {"target": field.target_column,
                           "sources": list(field.source_columns or [])}
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
        "name": entity.name, "source_table": entity.source_table,
        "target_table": entity.target_table, "source_key": list(entity.source_key or []),
        "target_key": entity.target_key, "external_id": entity.external_id,
        "load_mode": entity.load_mode, "load_order": entity.load_order,
        "filters": [{k: _sorted_json(f[k]) for k in ("column", "op", "value") if k in f}
                    for f in entity.filters or []],
        "dedupe_on": list(entity.dedupe_on or []),
        "watermark_column": entity.watermark_column, "notes": entity.notes,
    }
    if entity.delete_policy != DeletePolicy.IGNORE:  # older files (and readers) stay as they were
        out.update(delete_policy=entity.delete_policy,
                   delete_mark_column=entity.delete_mark_column,
                   delete_mark_value=entity.delete_mark_value)
    fields = sorted(entity.fields.all(), key=lambda f: (f.position, f.id))
    out["fields"] = [_field_out(f) for f in fields]
    return out


def _lookup_out(lookup) -> dict:
    entries = {e.key: e.value for e in sorted(lookup.entries.all(), key=lambda e: e.key)}
    return {"name": lookup.name, "description": lookup.description,
            "default": lookup.default_value, "entries": entries}


def _checks_out(plan: Plan) -> tuple[list, list]:
    rules = sorted(plan.validation_rules.all(), key=lambda r: (r.phase != "pre", r.name))
    cases = sorted(plan.uat_cases.all(), key=lambda c: (c.position, c.id))
    return (
        [{"name": r.name, "phase": r.phase, "kind": r.kind, "entity": r.entity,
          "column": r.column, "params": _sorted_json(r.params or {}), "severity": r.severity,
          "enabled": r.enabled} for r in rules],
        [{"title": c.title, "steps": c.steps, "expected_result": c.expected_result}
         for c in cases],
    )


def plan_export_dict(*, plan: Plan) -> dict:
    """The plan as plain data in the v1 layout (no secrets, no connection details). Read-only."""
    plan = plan_detail(slug=plan.slug)
    rules, cases = _checks_out(plan)
    milestones = sorted(plan.milestones.all(), key=lambda m: (m.position, m.start, m.id))
    return {
        "format": FORMAT,
        "plan": {
            "name": plan.name, "slug": plan.slug, "description": plan.description,
            "strategy": plan.strategy, "batch_size": plan.batch_size,
            "parallelism": plan.parallelism,
            "failure_threshold_pct": _number(Decimal(plan.failure_threshold_pct)),
            "rollback_on_threshold": plan.rollback_on_threshold,
        },
        "systems": {"source": plan.source.name, "target": plan.target.name},
        "lookups": [_lookup_out(lk) for lk in sorted(plan.lookups.all(), key=lambda x: x.name)],
        "entities": [_entity_out(e) for e in
                     sorted(plan.entities.all(), key=lambda e: (e.load_order, e.name))],
        "validation_rules": rules,
        "uat_cases": cases,
        "milestones": [{"phase": m.phase, "start": m.start, "end": m.end,
                        "deliverable": m.deliverable} for m in milestones],
    }


def plan_export_yaml(*, plan: Plan) -> str:
    """The plan as v1 YAML text; deterministic (export → import → export is byte-identical)."""
    return yaml.dump(plan_export_dict(plan=plan), Dumper=_Dumper, sort_keys=False,
                     allow_unicode=True, width=1_000_000, indent=2)


# --------------------------------------------------------------------------- reading nodes

_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TEXT_PARAMS = ("str", "regex", "choice", "lookup", "entity", "column")
_FILTER_OPS = ("eq", "ne", "in", "not_in", "is_null", "not_null", "gt", "ge", "lt", "le",
               "regex")
Path = tuple[str | int, ...]


def _path_text(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(document)"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for types, name in ((bool, "true/false"), (str, "text"), (int, "an integer"),
                        (float, "a number"), (list, "a list"), (dict, "a mapping"),
                        (dt.date, "a date")):
        if isinstance(value, types):
            return name
    return type(value).__name__


class _Reader:
    """Maps a path in the loaded data back to its YAML node, to report line and column."""

    def __init__(self, root: yaml.Node) -> None:
        self.root = root
        self.rules_format = RULES_FORMAT

    def node(self, path: Path, *, at_key: bool = False) -> yaml.Node:
        node = self.root
        for i, part in enumerate(path):
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                pair = next(((k, v) for k, v in node.value
                             if isinstance(k, yaml.ScalarNode) and k.value == part), None)
                if pair is None:
                    return node
                node = pair[0] if at_key and i == len(path) - 1 else pair[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                    and part < len(node.value):
                node = node.value[part]
            else:
                return node
        return node

    def raw(self, path: Path) -> str:
        """A scalar as written (``01`` stays ``01``), for text that YAML would type otherwise."""
        node = self.node(path)
        if not isinstance(node, yaml.ScalarNode):
            self.fail(path, f"must be text, got a {node.id}")
        return node.value

    def fail(self, path: Path, reason: str, *, at_key: bool = False) -> NoReturn:
        mark = self.node(path, at_key=at_key).start_mark
        where = _path_text(path)
        raise ApplicationError(
            f"line {mark.line + 1}, column {mark.column + 1}: {where}: {reason}",
            field=where, extra={"line": mark.line + 1, "column": mark.column + 1, "path": where},
        )


def _check_nodes(root: yaml.Node) -> None:
    """Refuse aliases (shared nodes) and duplicate mapping keys, which safe_load would hide."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise yaml.MarkedYAMLError(problem="aliases (*name) are not supported",
                                       problem_mark=node.start_mark)
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        raise yaml.MarkedYAMLError(problem=f"duplicate key '{key.value}'",
                                                   problem_mark=key.start_mark)
                    keys.add(key.value)
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    message = f"{where}YAML syntax error: {exc.problem or exc}"
    ctx = exc.context_mark
    if exc.context and ctx is not None and ctx is not mark:
        message += f" ({exc.context} at line {ctx.line + 1}, column {ctx.column + 1})"
    return message


def _parse(text: str) -> tuple[Any, yaml.Node]:
    """Loaded data and its node tree; YAML syntax errors become ApplicationError with position."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ApplicationError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None:
            raise ApplicationError("line 1, column 1: the document is empty.")
        _check_nodes(root)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        raise ApplicationError(_syntax_message(exc)) from None
    except yaml.YAMLError as exc:
        raise ApplicationError(f"YAML error: {exc}") from None
    except RecursionError:
        raise ApplicationError("The YAML document is nested too deeply.") from None
    return data, root


# --------------------------------------------------------------------------- typed getters


def _mapping(r: _Reader, value: Any, path: Path, allowed: tuple[str, ...],
             required: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        r.fail(path, f"must be a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            r.fail(path, f"keys must be text, got {_kind(key)} (quote it)")
        if key not in allowed:
            r.fail((*path, str(key)), f"unknown key '{key}' (expected one of: "
                   f"{', '.join(allowed)})", at_key=True)
    for key in required:
        if key not in value:
            r.fail(path, f"missing required key '{key}'")
    return value


def _list(r: _Reader, d: dict, path: Path, key: str) -> list:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        r.fail((*path, key), f"must be a list, got {_kind(value)}")
    return value


def _text(r: _Reader, d: dict, path: Path, key: str, *, max_len: int | None = None,
          blank: bool = True, nullable: bool = False, choices: tuple = (), slug: bool = False,
          default: str | None = "") -> str | None:
    where = (*path, key)
    value = d.get(key, default)
    if value is None and (nullable or default is None):
        return None
    if value is None:
        value = ""
    if not isinstance(value, str):
        r.fail(where, f"must be text, got {_kind(value)}")
    if "\x00" in value:
        r.fail(where, "must not contain NUL characters")
    if max_len is not None and len(value) > max_len:
        r.fail(where, f"is longer than {max_len} characters")
    if not blank and not value.strip():
        r.fail(where, "must not be empty")
    if choices and value not in choices:
        r.fail(where, f"must be one of {', '.join(choices)}, got '{value}'")
    if slug and not _SLUG.fullmatch(value):
        r.fail(where, "must be a slug (letters, digits, '-' and '_')")
    return value


def _int(r: _Reader, d: dict, path: Path, key: str, *, default: int, lo: int, hi: int) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        r.fail((*path, key), f"must be an integer, got {_kind(value)}")
    if not lo <= value <= hi:
        r.fail((*path, key), f"must be between {lo} and {hi}, got {value}")
    return value


def _bool(r: _Reader, d: dict, path: Path, key: str, *, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        r.fail((*path, key), f"must be true or false, got {_kind(value)}")
    return value


def _texts(r: _Reader, d: dict, path: Path, key: str, *, nonempty: bool = False) -> list[str]:
    values = _list(r, d, path, key)
    if nonempty and not values:
        r.fail((*path, key), "must name at least one column")
    return [_text(r, {i: v}, (*path, key), i, max_len=128, blank=False)  # type: ignore[arg-type]
            for i, v in enumerate(values)]


def _json(r: _Reader, value: Any, path: Path) -> Any:
    """Plain JSON values only (no dates, no NaN), as they are stored in JSON columns."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                r.fail(path, f"keys must be text, got {_kind(k)}")
            _json(r, v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _json(r, v, (*path, i))
    elif isinstance(value, float) and not math.isfinite(value):
        r.fail(path, "must be a finite number")
    elif isinstance(value, str) and "\x00" in value:
        r.fail(path, "must not contain NUL characters")
    elif value is not None and not isinstance(value, str | int | float | bool):
        r.fail(path, f"must be text, a number, true/false or null, got {_kind(value)} "
               "(quote it)")
    return value


def _params(r: _Reader, value: Any, path: Path) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        r.fail(path, f"must be a mapping, got {_kind(value)}")
    return _json(r, value, path)


def _date(r: _Reader, d: dict, path: Path, key: str) -> dt.date:
    value = d.get(key)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        r.fail((*path, key), f"must be a date YYYY-MM-DD, got {_kind(value)}")


def _unique(r: _Reader, seen: dict, value: str, path: Path, what: str) -> None:
    if value in seen:
        r.fail(path, f"duplicate {what} '{value}' (also at {_path_text(seen[value])})")
    seen[value] = path


# --------------------------------------------------------------------------- sections

_TOP = ("format", "plan", "systems", "lookups", "entities", "validation_rules", "uat_cases",
        "milestones")
_PLAN = ("name", "slug", "description", "strategy", "batch_size", "parallelism",
         "failure_threshold_pct", "rollback_on_threshold")
_ENTITY = ("name", "source_table", "target_table", "source_key", "target_key", "external_id",
           "load_mode", "load_order", "filters", "dedupe_on", "watermark_column", "delete_policy",
           "delete_mark_column", "delete_mark_value", "notes", "fields")
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
        default_factory=list)
    validation_rules: list[dict] = field(default_factory=list)
    uat_cases: list[dict] = field(default_factory=list)
    milestones: list[dict] = field(default_factory=list)


def _read_plan(r: _Reader, d: Any) -> dict:
    p: Path = ("plan",)
    _mapping(r, d, p, _PLAN, ("name", "slug"))
    threshold = d.get("failure_threshold_pct", 10)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
            or not 0 <= threshold <= 100:
        r.fail((*p, "failure_threshold_pct"), "must be a number from 0 to 100")
    return {
        "name": _text(r, d, p, "name", max_len=150, blank=False),
        "slug": _text(r, d, p, "slug", max_len=150, slug=True),
        "description": _text(r, d, p, "description"),
        "strategy": _text(r, d, p, "strategy", choices=tuple(PlanStrategy.values),
                          default=PlanStrategy.BIG_BANG),
        "batch_size": _int(r, d, p, "batch_size", default=10_000, lo=1, hi=10_000_000),
        "parallelism": _int(r, d, p, "parallelism", default=2, lo=1, hi=64),
        "failure_threshold_pct": Decimal(str(threshold)).quantize(Decimal("0.01"),
                                                                  rounding=ROUND_HALF_UP),
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
            r.fail((*p, role), f"unknown system '{name}': register it first (systems are "
                   "matched by name; the file never carries connection details)")
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
            if not isinstance(part, yaml.ScalarNode) or len(part.value) > 255 \
                    or "\x00" in part.value:
                mark = part.start_mark
                raise ApplicationError(
                    f"line {mark.line + 1}, column {mark.column + 1}: {_path_text(path)}: "
                    "keys and values must be text of at most 255 characters")
        entries[key.value] = value.value
    return entries


def _read_lookups(r: _Reader, data: dict) -> list[tuple[dict, dict[str, str]]]:
    out, seen = [], {}
    for i, d in enumerate(_list(r, data, (), "lookups")):
        p: Path = ("lookups", i)
        _mapping(r, d, p, ("name", "description", "default", "entries"), ("name",))
        name = _text(r, d, p, "name", max_len=100, slug=True)
        _unique(r, seen, name, (*p, "name"), "lookup name")
        values = {"name": name, "description": _text(r, d, p, "description"),
                  "default_value": _text(r, d, p, "default", max_len=255, default=None)}
        entries = _read_entries(r, (*p, "entries")) if d.get("entries") else {}
        out.append((values, entries))
    return out


def _read_filters(r: _Reader, d: dict, path: Path) -> list[dict]:
    out = []
    for i, f in enumerate(_list(r, d, path, "filters")):
        p = (*path, "filters", i)
        _mapping(r, f, p, ("column", "op", "value"), ("column", "op"))
        item = {"column": _text(r, f, p, "column", max_len=128, blank=False),
                "op": _text(r, f, p, "op", choices=_FILTER_OPS)}
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
        "default_value": (r.raw((*p, "default")) if isinstance(default, int | float | bool)
                          else _text(r, d, p, "default", default=None)),
        "required": _bool(r, d, p, "required", default=False),
        "notes": _text(r, d, p, "notes"),
    }
    steps = [_read_step(r, s, (*p, "steps", i), names)
             for i, s in enumerate(_list(r, d, p, "steps"))]
    if len(values["source_columns"]) > 1 and (not steps or steps[0][0] not in _FRAME_RULES):
        r.fail((*p, "steps"), f"several source columns need a first step that combines them "
               f"({' or '.join(_FRAME_RULES)})")
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
        "load_mode": _text(r, d, p, "load_mode", choices=tuple(LoadMode.values),
                           default=LoadMode.INSERT),
        "load_order": _int(r, d, p, "load_order", default=0, lo=0, hi=32767),
        "filters": _read_filters(r, d, p),
        "dedupe_on": _texts(r, d, p, "dedupe_on"),
        "watermark_column": _text(r, d, p, "watermark_column", max_len=128) or "",
        "delete_policy": _text(r, d, p, "delete_policy", choices=tuple(DeletePolicy.values),
                               default=DeletePolicy.IGNORE),
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
        _unique(r, seen, field_values["target_column"], (*p, "fields", i, "target"),
                "target column")
        fields.append((field_values, steps))
    return values, fields


def _read_entities(r: _Reader, data: dict, lookups: list) -> list:
    items = _list(r, data, (), "entities")
    names = {"lookup": {values["name"] for values, _ in lookups},
             "entity": {e["name"] for e in items
                        if isinstance(e, dict) and isinstance(e.get("name"), str)}}
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
            "severity": _text(r, d, p, "severity", choices=tuple(Severity.values),
                              default=Severity.BLOCKING),
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
        out.append({"title": _text(r, d, p, "title", max_len=200, blank=False),
                    "steps": _text(r, d, p, "steps"),
                    "expected_result": _text(r, d, p, "expected_result")})
    return out


def _read_milestones(r: _Reader, data: dict) -> list[dict]:
    out = []
    for i, d in enumerate(_list(r, data, (), "milestones")):
        p: Path = ("milestones", i)
        _mapping(r, d, p, ("phase", "start", "end", "deliverable"), ("phase", "start", "end"))
        values = {"phase": _text(r, d, p, "phase", max_len=100, blank=False),
                  "start": _date(r, d, p, "start"), "end": _date(r, d, p, "end"),
                  "deliverable": _text(r, d, p, "deliverable", max_len=255), "position": i}
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
    doc = _Doc(plan=_read_plan(r, data["plan"]), source=source, target=target,
               lookups=_read_lookups(r, data))
    doc.entities = _read_entities(r, data, doc.lookups)
    doc.validation_rules = _read_rules(r, data)
    doc.uat_cases = _read_cases(r, data)
    doc.milestones = _read_milestones(r, data)
    return doc


# --------------------------------------------------------------------------- writing


def _bulk(objs: list, model: type, user) -> list:
    return bulk_create_with_history(objs, model, default_user=user) if objs else []


def _write_entities(plan: Plan, doc: _Doc, user) -> None:
    entities = _bulk([EntityMapping(plan=plan, **values) for values, _ in doc.entities],
                     EntityMapping, user)
    fields, chains = [], []
    for entity, (_, specs) in zip(entities, doc.entities, strict=True):
        for position, (values, steps) in enumerate(specs):
            fields.append(FieldMapping(entity=entity, position=position, **values))
            chains.append(steps)
    fields = _bulk(fields, FieldMapping, user)
    _bulk([RuleStep(field=f, position=i, rule=rule, params=params)
           for f, steps in zip(fields, chains, strict=True)
           for i, (rule, params) in enumerate(steps)], RuleStep, user)


def _write_children(plan: Plan, doc: _Doc, user) -> None:
    tables = _bulk([LookupTable(plan=plan, **values) for values, _ in doc.lookups],
                   LookupTable, user)
    _bulk([LookupEntry(table=table, key=k, value=v)
           for table, (_, entries) in zip(tables, doc.lookups, strict=True)
           for k, v in entries.items()], LookupEntry, user)
    _write_entities(plan, doc, user)
    _bulk([Milestone(plan=plan, **values) for values in doc.milestones], Milestone, user)


def _replace_checks(plan: Plan, rules: list[dict], cases: list[dict]) -> None:
    """Validation rules are matched by name and UAT cases by title, so past results stay."""
    kept = {rule.name: rule for rule in plan.validation_rules.all()}
    for values in rules:
        rule = kept.pop(values["name"], None) or ValidationRule(plan=plan)
        for key, value in values.items():
            setattr(rule, key, value)
        rule.save()
    ValidationRule.objects.filter(pk__in=[rule.pk for rule in kept.values()]).delete()
    old = list(plan.uat_cases.order_by("position", "id"))
    for position, values in enumerate(cases):
        case = next((c for c in old if c.title == values["title"]), None)
        if case is not None:
            old.remove(case)
        case = case or UATTestCase(plan=plan)
        for key, value in {**values, "position": position}.items():
            setattr(case, key, value)
        case.save()
    UATTestCase.objects.filter(pk__in=[case.pk for case in old]).delete()


def _target_plan(doc: _Doc, user, replace: bool, r: _Reader) -> Plan:
    """A new plan, or the existing one emptied of its mappings (versions and runs stay)."""
    plan = Plan.objects.select_for_update().filter(slug=doc.plan["slug"]).first()
    if plan is not None and not replace:
        r.fail(("plan", "slug"), f"a plan with slug '{plan.slug}' already exists (import "
               "with replace to overwrite its contents)")
    clash = Plan.objects.filter(name__iexact=doc.plan["name"]).exclude(
        slug=doc.plan["slug"]).first()
    if clash is not None:
        r.fail(("plan", "name"), f"a plan called '{clash.name}' already exists (slug "
               f"'{clash.slug}'); plan names are unique")
    if plan is None:
        plan = Plan(owner=user if getattr(user, "is_authenticated", False) else None)
    else:
        for related in (plan.entities, plan.lookups, plan.milestones):
            related.all().delete()
        plan.status = PlanStatus.DRAFT  # an import is an edit: review and sign-off start again
    for key, value in doc.plan.items():
        setattr(plan, key, value)
    plan.source, plan.target = doc.source, doc.target
    plan._history_user = user if getattr(user, "is_authenticated", False) else None
    plan.save()
    return plan


def _locate(r: _Reader) -> Callable[[Path], tuple[int, int, str]]:
    def locate(path: Path) -> tuple[int, int, str]:
        mark = r.node(path).start_mark
        return mark.line + 1, mark.column + 1, _path_text(path)

    return locate


@dataclass(frozen=True)
class ImportCheck:
    """What an import would create, and the names the live schemas do not have."""

    name: str
    slug: str
    exists: bool
    counts: dict[str, int]
    problems: list[SchemaProblem]


def plan_import_check(*, text: str) -> ImportCheck:
    """Read and check a v1 document without writing (the import page's validate step).
    Read-only; raises ApplicationError with line and column for a document that cannot be
    imported at all; unknown tables / columns come back in ``problems``."""
    data, root = _parse(text)
    r = _Reader(root)
    doc = _read_document(data, r)
    counts = {"entities": len(doc.entities), "fields": sum(len(f) for _, f in doc.entities),
              "lookups": len(doc.lookups), "validation rules": len(doc.validation_rules),
              "UAT cases": len(doc.uat_cases), "milestones": len(doc.milestones)}
    return ImportCheck(doc.plan["name"], doc.plan["slug"],
                       Plan.objects.filter(slug=doc.plan["slug"]).exists(), counts,
                       schema_problems(doc, _locate(r)))


@transaction.atomic
def plan_import_yaml(*, text: str, user, replace: bool = False,
                     allow_unknown_schema: bool = False) -> Plan:
    """Create a plan from v1 YAML or, with ``replace``, overwrite an existing plan's contents in
    place (keeping its versions and runs). Tables and columns are checked against the systems'
    live schemas unless ``allow_unknown_schema`` (a plan for a schema not yet created).
    Transactional, all or nothing; raises PermissionDeniedError, or ApplicationError giving
    line, column, path and reason."""
    from .services_edit import EDIT, require_capability

    require_capability(user, EDIT)
    data, root = _parse(text)
    r = _Reader(root)
    doc = _read_document(data, r)
    if not allow_unknown_schema:
        problems = schema_problems(doc, _locate(r))
        if problems:
            raise schema_refusal(problems)
    existed = Plan.objects.filter(slug=doc.plan["slug"]).exists()
    plan = _target_plan(doc, user, replace, r)
    actor = user if getattr(user, "is_authenticated", False) else None
    _write_children(plan, doc, actor)
    _replace_checks(plan, doc.validation_rules, doc.uat_cases)
    audit_record(action=AuditAction.IMPORT, actor=user, obj=plan, after={
        "replaced": existed, "entities": len(doc.entities), "lookups": len(doc.lookups),
        "fields": sum(len(fields) for _, fields in doc.entities),
        "validation_rules": len(doc.validation_rules), "uat_cases": len(doc.uat_cases),
        "milestones": len(doc.milestones),
    })
    return plan
