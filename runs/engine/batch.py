"""One batch of one entity: extract -> transform -> validate -> load + ledger (one transaction)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from runs.engine.connectors.base import (
    ChangedSince,
    Connector,
    KeyRange,
    LoadResult,
    coerced_errors,
)
from runs.engine.drift import entity_check
from runs.engine.errors import EngineError
from runs.engine.snapshot import EntitySpec, PlanSnapshot
from runs.engine.transform import (
    FieldError,
    RowFailure,
    TransformResult,
    source_key_text,
    transform_frame,
)

_COUNTS = (
    "extracted",
    "loaded",
    "inserted",
    "updated",
    "failed",
    "filtered",
    "duplicates",
    "deleted",
)


@dataclass
class BatchOutcome:
    """Counts and failures of one batch; extracted == loaded + failed + filtered + duplicates."""

    extracted: int = 0
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    failed: int = 0
    filtered: int = 0
    duplicates: int = 0
    deleted: int = 0  # target rows deleted or marked because their source row was deleted
    failures: list[RowFailure] = field(default_factory=list)
    already_done: bool = False
    unchanged: int = 0  # loaded rows that were already identical in the target (not written)

    def to_meta(self) -> dict[str, Any]:
        """JSON-able form stored as the ledger batch record's result_meta."""
        meta: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS}
        # Built by hand: dataclasses.asdict deep-copies every value (~15 us per failure).
        meta["failures"] = [
            {
                "source_key": f.source_key,
                "source_row": dict(f.source_row),
                "transformed_row": dict(f.transformed_row),
                "stage": f.stage,
                "errors": [
                    {
                        "field": e.field,
                        "rule": e.rule,
                        "value": e.value,
                        "message": e.message,
                        "category": e.category,
                    }
                    for e in f.errors
                ],
            }
            for f in self.failures
        ]
        return meta

    @classmethod
    def from_meta(cls, meta: dict[str, Any], load: LoadResult | None = None) -> BatchOutcome:
        """Rebuild from a stored result_meta (a retried, already committed batch)."""
        failures = [
            RowFailure(
                source_key=f["source_key"],
                source_row=f["source_row"],
                transformed_row=f["transformed_row"],
                stage=f["stage"],
                errors=[FieldError(**e) for e in f["errors"]],
            )
            for f in meta.get("failures", [])
        ]
        counts = {name: int(meta.get(name, 0)) for name in _COUNTS}
        if load is not None:
            counts.update(inserted=load.inserted, updated=load.updated)
            return cls(**counts, failures=failures, already_done=True, unchanged=load.unchanged)
        return cls(**counts, failures=failures, already_done=True)


def source_columns(entity: EntitySpec) -> list[str]:
    """Source columns a batch extracts: key, field sources, filter columns (first-seen order)."""
    names = [
        *entity.source_key,
        *(s for f in entity.fields for s in f.sources),
        *(f.column for f in entity.filters),
    ]
    return list(dict.fromkeys(names))


def execute_batch(
    *,
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    key_range: KeyRange,
    source: Connector,
    target: Connector,
    run_id: str,
    batch_id: str,
    dry_run: bool = False,
    changed_since: str | None = None,
    skip_unchanged: bool = False,
    failed_parents: Mapping[str, set[str]] | None = None,
    stored_schema: Mapping[str, Any] | None = None,
) -> BatchOutcome:
    """Run one batch; idempotent per (run_id, batch_id): a committed batch is not redone.

    Target writes (rows, ledger, key map, batch record) happen in ONE transaction; a dry run
    writes nothing. Before reading, the columns the entity uses are checked against the live
    source and target tables (and ``stored_schema``, the version's schemas, when given).
    Raises SchemaError (drift: nothing written), TransientError (retry) or EngineError.
    """
    watermark = _watermark(entity, changed_since)
    if not dry_run:
        stored = target.batch_result(run_id, batch_id)
        if stored is not None:  # committed before: its failures with their whole source rows
            done = BatchOutcome.from_meta(stored.result_meta, stored)
            _complete(done.failures, _full_rows(source, entity, key_range, watermark))
            return done
    entity_check(
        entity,
        stored=stored_schema,
        source=source.live_table(entity.source_table),
        target=target.live_table(entity.target_table),
    )
    # Arrow-backed strings where the connector offers them (PostgreSQL): no Python str per value
    extract = getattr(source, "extract_text", source.extract)
    frame = extract(
        entity.source_table,
        source_columns(entity),
        entity.source_key,
        key_range,
        changed_since=watermark,
    )
    return process_frame(
        full_rows=_full_rows(source, entity, key_range, watermark),
        snapshot=snapshot,
        entity=entity,
        frame=frame,
        source=source,
        target=target,
        run_id=run_id,
        batch_id=batch_id,
        dry_run=dry_run,
        skip_unchanged=skip_unchanged,
        failed_parents=failed_parents,
    )


def process_frame(
    *,
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    frame: pd.DataFrame,
    source: Connector,
    target: Connector,
    run_id: str,
    batch_id: str,
    dry_run: bool = False,
    skip_unchanged: bool = False,
    failed_parents: Mapping[str, set[str]] | None = None,
    full_rows: Callable[..., dict] | None = None,
) -> BatchOutcome:
    """Transform → validate → load + ledger for rows already in hand (a batch's extract, or
    failed records being re-processed). Idempotent per (run_id, batch_id); one target
    transaction; a dry run writes nothing. ``full_rows(key, row)`` completes a failed row
    with the source columns the plan does not read. Raises SchemaError, TransientError,
    EngineError."""
    keymaps = _keymaps(snapshot, entity, frame, source, target, dry_run, failed_parents)
    result = transform_frame(
        entity=entity,
        frame=frame,
        lookups=snapshot.lookups,
        keymaps=keymaps,
        namespace=snapshot.plan,
    )
    rows, keys, load_failures = _validate(target, entity, result, frame)
    failures = [*result.failures, *load_failures]
    _complete(failures, full_rows)
    outcome = BatchOutcome(
        extracted=len(frame),
        loaded=len(rows),
        failed=len(failures),
        filtered=result.filtered,
        duplicates=result.duplicates,
        failures=failures,
    )
    _check_accounting(outcome)
    if dry_run:
        return outcome
    loaded = target.load_batch(
        entity=entity,
        rows=rows,
        source_keys=keys,
        run_id=run_id,
        batch_id=batch_id,
        namespace=snapshot.plan,
        result_meta=outcome.to_meta(),
        skip_unchanged=skip_unchanged,
        describe_coerced=_coerced_describer(frame, rows, keys, full_rows),
    )
    if loaded.already_done:  # a concurrent attempt committed first: report what it stored
        done = BatchOutcome.from_meta(loaded.result_meta, loaded)
        _complete(done.failures, full_rows)
        return done
    if loaded.coerced:  # rows the target changed: failures now, in the stored result too
        done = replace(BatchOutcome.from_meta(loaded.result_meta, loaded), already_done=False)
        # after the commit: the coerced rows' source rows are completed from the source now
        _complete(done.failures, full_rows)
        return done
    return replace(
        outcome, inserted=loaded.inserted, updated=loaded.updated, unchanged=loaded.unchanged
    )


def _complete(failures: list[RowFailure], full_rows: Callable[..., dict] | None) -> None:
    """Give every failure its whole source row (all the source's columns, mapped or not);
    reads the source once for the batch's key range when a failure lacks columns."""
    if full_rows is None:
        return
    for failure in failures:
        failure.source_row = full_rows(failure.source_key, failure.source_row)


def _full_rows(
    source: Connector, entity: EntitySpec, key_range: KeyRange, watermark: ChangedSince | None
) -> Callable[..., dict]:
    """``full_rows`` for a batch: on the first failed row, the key range is read once more for
    the columns the plan does not extract (only then: a batch without failures pays nothing);
    each failed row is completed in the table's column order. Rows the target coerced are
    found inside the load's transaction, where the source is not read (source and target may
    share a connection: ``fetch=False``); ``process_frame`` completes them after the commit."""
    cache: dict[str, Any] = {}

    def load() -> None:
        info = source.live_table(entity.source_table)
        order = list(info.column_names) if info is not None else []
        extracted = set(source_columns(entity))
        extra = [c for c in order if c not in extracted]
        cache["order"], cache["rows"] = order, {}
        if not extra:
            return
        more = source.extract(
            entity.source_table,
            [*entity.source_key, *extra],
            entity.source_key,
            key_range,
            changed_since=watermark,
        )
        keys = source_key_text(more, entity.source_key).tolist()
        records = more[extra].astype(object).where(more[extra].notna(), None)
        cache["rows"] = dict(zip(keys, records.to_dict("records"), strict=True))

    def complete(key: str, row: dict, *, fetch: bool = True) -> dict:
        if "rows" not in cache:
            if not fetch:
                return row
            load()
        merged = {**cache["rows"].get(key, {}), **row}
        order = [c for c in cache["order"] if c in merged]
        return {c: merged[c] for c in [*order, *(c for c in merged if c not in order)]}

    return complete


def _coerced_describer(
    frame: pd.DataFrame,
    rows: pd.DataFrame,
    keys: list[str],
    full_rows: Callable[..., dict] | None = None,
) -> Callable[[int, list[tuple[str, str | None, str | None]]], dict[str, Any]]:
    """The result_meta failure of a loaded row the target changed (``coerced_by_target``):
    its source row, transformed row and one error per changed column."""

    def describe(position: int, diffs: list[tuple[str, str | None, str | None]]) -> dict:
        idx = rows.index[position]
        source_row = _record(frame.loc[idx]) if idx in frame.index else {}
        if full_rows is not None:  # inside the target transaction: no source read here
            source_row = full_rows(keys[position], source_row, fetch=False)
        return {
            "source_key": keys[position],
            "source_row": source_row,
            "transformed_row": _record(rows.loc[idx]),
            "stage": "load",
            "errors": coerced_errors(diffs),
        }

    return describe


def _watermark(entity: EntitySpec, changed_since: str | None) -> ChangedSince | None:
    if changed_since is None:
        return None
    if not entity.watermark_column:
        raise EngineError(f"entity {entity.name!r} has no watermark column for a delta run")
    return (entity.watermark_column, str(changed_since))


def _check_accounting(outcome: BatchOutcome) -> None:
    accounted = outcome.loaded + outcome.failed + outcome.filtered + outcome.duplicates
    if accounted != outcome.extracted:
        raise EngineError(
            f"batch accounting broken: extracted {outcome.extracted}, accounted {accounted}"
        )


def reference_parents(entity: EntitySpec) -> dict[str, set[str]]:
    """Parent entity name -> source columns whose values a reference lookup maps."""
    from runs.engine.rules import REGISTRY

    parents: dict[str, set[str]] = {}
    for spec in entity.fields:
        for step in spec.steps:
            rule = REGISTRY.get(step.rule)
            for param in rule.params if rule else ():
                if param.type == "entity" and step.params.get(param.name):
                    parents.setdefault(str(step.params[param.name]), set()).update(spec.sources)
    return parents


def _keymaps(
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    frame: pd.DataFrame,
    source: Connector,
    target: Connector,
    dry_run: bool,
    failed_parents: Mapping[str, set[str]] | None = None,
) -> dict[str, dict[str, str]]:
    """Key maps for this batch's reference lookups, limited to the values it contains.

    A dry run resolves against the parent's *source* keys (key -> itself), as nothing is
    loaded, minus the parent keys that failed earlier in the same dry run (``failed_parents``)
    — so a dry run fails the same children a load would.
    """
    keymaps: dict[str, dict[str, str]] = {}
    for parent_name, columns in reference_parents(entity).items():
        values = set()
        for col in columns:
            if col in frame.columns:
                values.update(str(v).strip() for v in frame[col] if not _missing(v))
        values.discard("")
        wanted = sorted(values)
        if dry_run:
            parent = snapshot.entity(parent_name)
            found = source.fetch_keys(parent.source_table, parent.source_key, wanted)
            found -= (failed_parents or {}).get(parent_name, set())
            keymaps[parent_name] = {k: k for k in found}
        else:
            keymaps[parent_name] = target.keymap_lookup(snapshot.plan, parent_name, wanted)
    return keymaps


def _validate(
    target: Connector, entity: EntitySpec, result: TransformResult, frame: pd.DataFrame
) -> tuple[pd.DataFrame, list[str], list[RowFailure]]:
    """Split transformed rows into loadable rows and load-stage failures (target types)."""
    rows = result.text_rows
    errors: dict[Hashable, list[FieldError]] = (
        target.validate_rows(entity.target_table, rows) if len(rows) else {}
    )
    failures = [
        RowFailure(
            source_key=str(result.source_keys.at[idx]),
            source_row=_record(frame.loc[idx]),
            transformed_row=_record(rows.loc[idx]),
            stage="load",
            errors=list(row_errors),
        )
        for idx, row_errors in errors.items()
    ]
    if errors:
        rows = rows.drop(index=list(errors))
    keys = [str(k) for k in result.source_keys.loc[rows.index]]
    return rows, keys, failures


def _missing(value: object) -> bool:
    """None, NaN or pd.NA (frames may hold any of them for a missing value)."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _record(row: pd.Series) -> dict[str, str | None]:
    return {str(k): (None if _missing(v) else str(v)) for k, v in row.items()}
