"""Live preview: an entity's current (unversioned) mapping applied to a few source rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from migration_planner.lib.errors import ApplicationError
from runs.engine.batch import source_columns
from runs.engine.errors import EngineError
from runs.engine.rules import REGISTRY, RuleParamError
from runs.engine.snapshot import EntitySpec, PlanSnapshot
from runs.engine.transform import source_key_text, transform_frame

from .models import EntityMapping, Plan
from .schema import has_keymap, sample_frame, system_connector
from .services import plan_snapshot_build

MAX_ROWS = 500


@dataclass
class PreviewCell:
    value: str | None
    error: str | None = None
    column: str = ""


@dataclass
class PreviewRow:
    key: str
    source: list[str | None]
    result: list[PreviewCell]
    status: str  # ok | failed | skipped (filtered or duplicate)


@dataclass
class Preview:
    entity: str
    limit: int
    order: str
    source_columns: list[str] = field(default_factory=list)
    target_columns: list[str] = field(default_factory=list)
    rows: list[PreviewRow] = field(default_factory=list)
    error: str | None = None
    elapsed_ms: float = 0.0

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
    frame = sample_frame(plan.source, spec.source_table, columns, limit=limit, order=order,
                         key=spec.source_key)
    keymaps = _keymaps(plan, snapshot, spec, frame)
    result = transform_frame(entity=spec, frame=frame, lookups=snapshot.lookups,
                             keymaps=keymaps, namespace=snapshot.plan)
    preview.source_columns = columns
    preview.target_columns = [f.target for f in spec.fields]
    failures = {f.source_key: f for f in result.failures}
    keys = source_key_text(frame, spec.source_key)
    for pos in range(len(frame)):
        preview.rows.append(_row(frame, pos, str(keys.iloc[pos]), result, failures,
                                 preview.target_columns))


def _row(frame: pd.DataFrame, pos: int, key: str, result, failures: dict,
         targets: list[str]) -> PreviewRow:
    source = [_text(v) for v in frame.iloc[pos].tolist()]
    label = frame.index[pos]
    if label in result.rows.index:
        good = result.rows.loc[label]
        cells = [PreviewCell(_text(good[t]), column=t) for t in targets]
        return PreviewRow(key, source, cells, "ok")
    failure = failures.get(key)
    if failure is None:
        return PreviewRow(key, source, [PreviewCell(None, column=t) for t in targets], "skipped")
    errors = {e.field: e.message for e in failure.errors}
    cells = [PreviewCell(_text(failure.transformed_row.get(t)), errors.get(t), t)
             for t in targets]
    return PreviewRow(key, source, cells, "failed")


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _keymaps(plan: Plan, snapshot: PlanSnapshot, spec: EntitySpec,
             frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """The target's key map when a run has loaded one, else parent keys that exist in the
    parent's source table map to themselves (as the engine's dry run does)."""
    parents = _reference_parents(spec)
    if not parents:
        return {}
    use_target = has_keymap(plan.target)
    keymaps: dict[str, dict[str, str]] = {}
    with system_connector(plan.source) as source:
        for parent_name, cols in parents.items():
            wanted = sorted({str(v).strip() for c in cols if c in frame.columns
                             for v in frame[c] if v is not None} - {""})
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
