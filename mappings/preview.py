"""Live preview: an entity's current (unversioned) mapping applied to a few source rows."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pandas as pd

from migration_planner.lib.errors import ApplicationError
from runs.engine.batch import source_columns
from runs.engine.connectors.base import type_family
from runs.engine.errors import EngineError
from runs.engine.rules import REGISTRY, RuleParamError
from runs.engine.snapshot import EntitySpec, PlanSnapshot
from runs.engine.transform import source_key_text, transform_frame

from .models import EntityMapping, Plan
from .profiling import NULL_TEXT
from .schema import has_keymap, sample_frame, system_connector, system_table
from .selectors import column_family, column_required
from .services import plan_snapshot_build

MAX_ROWS = 500
_BOOL_WORDS = ("true", "t", "yes", "y", "1", "false", "f", "no", "n", "0")


@dataclass
class PreviewCell:
    value: str | None
    error: str | None = None
    column: str = ""
    rule: str = ""  # the rule step that failed (or "type" when the target type refuses)
    source: str | None = None  # the field's source value(s), "a + b" for several
    mapped: bool = True


@dataclass
class PreviewColumn:
    """One target column, in the target table's order, with what feeds it."""

    name: str
    data_type: str
    required: bool
    sources: list[str] = field(default_factory=list)
    mapped: bool = True


@dataclass
class PreviewRow:
    key: str
    source: list[str | None]
    cells: list[PreviewCell]  # one per target column, in target order (unmapped too)
    status: str  # ok | failed | skipped (filtered or duplicate)

    @property
    def result(self) -> list[PreviewCell]:
        """Cells of the mapped target columns only, in target order."""
        return [c for c in self.cells if c.mapped]


@dataclass
class Preview:
    entity: str
    limit: int
    order: str
    source_columns: list[str] = field(default_factory=list)
    target_columns: list[str] = field(default_factory=list)  # mapped, in target order
    columns: list[PreviewColumn] = field(default_factory=list)  # every target column
    rows: list[PreviewRow] = field(default_factory=list)
    error: str | None = None
    elapsed_ms: float = 0.0
    problems: list[str] = field(default_factory=list)
    unloadable: list[str] = field(default_factory=list)  # required target columns not mapped

    @property
    def failed(self) -> int:
        return sum(1 for r in self.rows if r.status == "failed")


def entity_preview(*, entity: EntityMapping, limit: int = 20, order: str = "first") -> Preview:
    """Transform ``limit`` sample rows (first by key, or random) with the plan's current
    mapping; read-only; rule/schema problems come back in ``Preview.error``, never raised."""
    started = time.perf_counter()
    limit = max(1, min(int(limit), MAX_ROWS))
    preview = Preview(entity=entity.name, limit=limit, order=order)
    try:
        _fill(preview, entity, limit, order)
    except RuleParamError as exc:
        preview.error = f"Invalid rule parameter — {exc}"
    except (ApplicationError, EngineError) as exc:
        preview.error = getattr(exc, "message", None) or str(exc)
    preview.elapsed_ms = (time.perf_counter() - started) * 1000
    return preview


def _fill(preview: Preview, entity: EntityMapping, limit: int, order: str) -> None:
    plan = entity.plan
    snapshot = plan_snapshot_build(plan=plan)
    spec = snapshot.entity(entity.name)
    columns = source_columns(spec)
    frame = sample_frame(
        plan.source, spec.source_table, columns, limit=limit, order=order, key=spec.source_key
    )
    keymaps = _keymaps(plan, snapshot, spec, frame)
    result = transform_frame(
        entity=spec, frame=frame, lookups=snapshot.lookups, keymaps=keymaps, namespace=snapshot.plan
    )
    target = system_table(plan.target, spec.target_table)
    preview.source_columns = columns
    preview.columns = _columns(spec, target)
    preview.target_columns = [c.name for c in preview.columns if c.mapped]
    failures = {f.source_key: f for f in result.failures}
    keys = source_key_text(frame, spec.source_key)
    for pos in range(len(frame)):
        preview.rows.append(
            _row(frame, pos, str(keys.iloc[pos]), result, failures, preview.columns)
        )
    preview.problems = _problems(preview, target) + _unparsed_dates(
        spec, target, system_table(plan.source, spec.source_table)
    )


def _columns(spec: EntitySpec, target) -> list[PreviewColumn]:
    """Every target column in table order, then mapped names the table lacks (drift)."""
    fields = {f.target: f for f in spec.fields}
    out = [
        PreviewColumn(
            c.name,
            c.data_type.lower(),
            column_required(c),
            list(fields[c.name].sources) if c.name in fields else [],
            c.name in fields,
        )
        for c in target.columns
    ]
    known = {c.name for c in target.columns}
    out += [
        PreviewColumn(f.target, "?", False, list(f.sources))
        for f in spec.fields
        if f.target not in known
    ]
    return out


_PARSE_RULES = {"parse_date", "constant", "default_if_null"}


def _unparsed_dates(spec: EntitySpec, target, source) -> list[str]:
    """Date, timestamp(tz) and time target columns fed text source columns by a chain with no
    parse rule: a type mismatch even when the sampled values happen to look like ISO dates
    (pure)."""
    types = {c.name: c for c in target.columns}
    source_types = {c.name: c for c in source.columns}
    out = []
    for fspec in spec.fields:
        col = types.get(fspec.target)
        family = column_family(col) if col else "text"
        if family not in ("date", "timestamp", "time") or any(
            s.rule in _PARSE_RULES for s in fspec.steps
        ):
            continue
        texts = [
            n
            for n in fspec.sources
            if n in source_types and column_family(source_types[n]) == "text"
        ]
        if texts and family == "time":
            out.append(
                f"“{fspec.target}” is a time column fed text from "
                f"{', '.join(f'“{n}”' for n in texts)}: no rule parses times, so the values "
                "must already read HH:MM[:SS]."
            )
        elif texts:
            out.append(
                f"“{fspec.target}” is a {family} column fed text from "
                f"{', '.join(f'“{n}”' for n in texts)} with no parse_date step: add one "
                "with the source's date formats."
            )
    return out


def _fits(family: str, text: str) -> bool:
    """Whether ``text`` parses as a value of the target type family (what the load casts)."""
    value = text.strip()
    try:
        if family == "integer":
            int(value)
        elif family == "numeric":
            return Decimal(value).is_finite()
        elif family == "boolean":
            return value.lower() in _BOOL_WORDS
        elif family == "uuid":
            uuid.UUID(value)
        elif family == "date":
            dt.date.fromisoformat(value)
        elif family == "timestamp":
            dt.datetime.fromisoformat(value.replace(" ", "T", 1) if len(value) > 10 else value)
    except (ValueError, InvalidOperation):
        return False
    return True


def _not_null_problem(preview: Preview, name: str) -> list[str]:
    """NULL results of a NOT NULL target column (no default): the load's required_missing,
    marked on the cells and rows (whatever the field's Required flag says)."""
    bad = 0
    for row in preview.rows:
        for cell in row.result:
            if cell.column == name and cell.value is None and not cell.error:
                cell.error, cell.rule = f"{name} is NOT NULL in the target", "target"
                row.status = "failed"
                bad += 1
    if not bad:
        return []
    what, verb = ("1 value", "is") if bad == 1 else (f"{bad} values", "are")
    return [
        f"{what} of “{name}” {verb} NULL but the target column is NOT NULL: the load would "
        f"reject {'it' if bad == 1 else 'them'}."
    ]


def _problems(preview: Preview, target) -> list[str]:
    """Unmapped required target columns (every row then fails: marked so), and result values
    the target type would refuse (those cells and their rows marked failing); pure over the
    filled preview."""
    mapped = set(preview.target_columns)
    preview.unloadable = [
        col.name for col in target.columns if column_required(col) and col.name not in mapped
    ]
    out = [
        f"Required target column “{name}” is not mapped: every row would fail to load."
        for name in preview.unloadable
    ]
    for row in preview.rows:
        if preview.unloadable and row.status == "ok":
            row.status = "failed"
    columns = {col.name: col for col in target.columns}
    for name in preview.target_columns:
        col = columns.get(name)
        if col is not None and column_required(col):
            out.extend(_not_null_problem(preview, name))
        family = type_family(col.cast_type or col.data_type) if col else "text"
        if family == "text":
            continue
        bad = 0
        for row in preview.rows:
            for cell in row.result:
                if (
                    cell.column == name
                    and cell.value is not None
                    and not cell.error
                    and not _fits(family, cell.value)
                ):
                    cell.error = f"not a valid {family} for “{name}”"
                    cell.rule = "type"
                    row.status = "failed"
                    bad += 1
        if bad:
            what = "1 value" if bad == 1 else f"{bad} values"
            verb, them = ("is", "it") if bad == 1 else ("are", "them")
            out.append(
                f"{what} of “{name}” {verb} not a valid {family}: the load would reject {them}."
            )
    return out


def _row(
    frame: pd.DataFrame, pos: int, key: str, result, failures: dict, columns: list[PreviewColumn]
) -> PreviewRow:
    values = frame.iloc[pos]
    source = [_text(v) for v in values.tolist()]
    label = frame.index[pos]
    if label in result.rows.index:
        good = result.rows.loc[label]
        status, produced, errors = "ok", {t: _text(good[t]) for t in good.index}, {}
    elif (failure := failures.get(key)) is not None:
        status, produced = "failed", {t: _text(v) for t, v in failure.transformed_row.items()}
        errors = {e.field: e for e in failure.errors}
    else:
        status, produced, errors = "skipped", {}, {}
    cells = []
    for col in columns:
        cells.append(_cell(col, values, produced, errors.get(col.name)))
    return PreviewRow(key, source, cells, status)


def _cell(col: PreviewColumn, values: pd.Series, produced: dict, err) -> PreviewCell:
    """One target column's cell: its source value(s) ("" when it has none), the result, and
    the failing rule's message."""
    given = [_text(values[n]) for n in col.sources if n in values.index]
    if not given:
        source = ""
    elif all(v is None for v in given):
        source = None
    else:
        source = " + ".join(NULL_TEXT if v is None else v for v in given)
    return PreviewCell(
        produced.get(col.name),
        err.message if err else None,
        col.name,
        err.rule if err else "",
        source,
        col.mapped,
    )


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _keymaps(
    plan: Plan, snapshot: PlanSnapshot, spec: EntitySpec, frame: pd.DataFrame
) -> dict[str, dict[str, str]]:
    """The target's key map when a run has loaded one, else parent keys that exist in the
    parent's source table map to themselves (as the engine's dry run does)."""
    parents = _reference_parents(spec)
    if not parents:
        return {}
    use_target = has_keymap(plan.target)
    keymaps: dict[str, dict[str, str]] = {}
    with system_connector(plan.source) as source:
        for parent_name, cols in parents.items():
            wanted = sorted(
                {
                    str(v).strip()
                    for c in cols
                    if c in frame.columns
                    for v in frame[c]
                    if v is not None
                }
                - {""}
            )
            parent = snapshot.entity(parent_name)
            found = source.fetch_keys(parent.source_table, parent.source_key, wanted)
            keymaps[parent_name] = {k: k for k in found}
    if use_target:
        with system_connector(plan.target) as target:
            for parent_name in parents:
                wanted = sorted(keymaps[parent_name])
                loaded = target.keymap_lookup(snapshot.plan, parent_name, wanted)
                if loaded:
                    keymaps[parent_name] = loaded
    return keymaps


def _reference_parents(spec: EntitySpec) -> dict[str, set[str]]:
    parents: dict[str, set[str]] = {}
    for fspec in spec.fields:
        for step in fspec.steps:
            rule = REGISTRY.get(step.rule)
            for param in rule.params if rule else ():
                if param.type == "entity" and step.params.get(param.name):
                    parents.setdefault(str(step.params[param.name]), set()).update(fspec.sources)
    return parents
