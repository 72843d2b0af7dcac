"""One batch of one entity: extract -> transform -> validate -> load + ledger (one transaction).

Its parts by role: ``outcome`` (counts and failures), ``failure_rows`` (completing and
describing failed rows), ``references`` (reference lookups' key maps)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from runs.engine import unchanged
from runs.engine.connectors.base import ChangedSince, Connector, KeyRange
from runs.engine.drift import entity_check
from runs.engine.errors import EngineError
from runs.engine.failure_rows import coerced_describer as _coerced_describer
from runs.engine.failure_rows import complete_failures as _complete
from runs.engine.failure_rows import extract_whole as _extract_whole
from runs.engine.failure_rows import failure_source_hashes
from runs.engine.failure_rows import full_rows_reader as _full_rows
from runs.engine.failure_rows import records_at as _records_at
from runs.engine.outcome import BatchOutcome
from runs.engine.outcome import check_accounting as _check_accounting
from runs.engine.references import batch_keymaps as _keymaps
from runs.engine.references import reference_parents
from runs.engine.snapshot import EntitySpec, PlanSnapshot
from runs.engine.transform import (
    FieldError,
    RowFailure,
    TransformResult,
    transform_frame,
)

# Kept importable from here (the batch's public names before the split by role).
__all__ = ["BatchOutcome", "execute_batch", "process_frame", "reference_parents", "source_columns"]


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
    failed_lookup: unchanged.FailedLookup | None = None,
    failed_batch_lookup: unchanged.FailedBatchLookup | None = None,
) -> BatchOutcome:
    """Run one batch; idempotent per (run_id, batch_id): a committed batch is not redone.

    Target writes (rows, ledger, key map, batch record) happen in ONE transaction; a dry run
    writes nothing. Before reading, the columns the entity uses are checked against the live
    source and target tables (and ``stored_schema``, the version's schemas, when given).
    ``failed_lookup``, ``failed_batch_lookup``: earlier failures a re-run carries instead of
    transforming them again, by key or a whole batch's (runs.engine.unchanged). Raises
    SchemaError (drift: nothing written), TransientError (retry) or EngineError.
    """
    watermark = _watermark(entity, changed_since)
    if not dry_run:
        stored = target.batch_result(run_id, batch_id)
        if stored is not None:  # committed before: its failures with their whole source rows
            done = BatchOutcome.from_meta(stored.result_meta, stored)
            _complete(done.failures, _full_rows(source, entity, key_range, watermark))
            return done
    live_target = target.live_table(entity.target_table)
    live_source = source.live_table(entity.source_table)
    entity_check(entity, stored=stored_schema, source=live_source, target=live_target)
    full_rows = _full_rows(source, entity, key_range, watermark, live_source)
    # Arrow-backed strings where the connector offers them (PostgreSQL): no Python str per
    # value; the columns the plan does not map come along, for the failures' whole rows
    extract = _extract_whole(getattr(source, "extract_text", source.extract), full_rows)
    state = None
    if skip_unchanged and not dry_run and unchanged.eligible(entity, target):
        frame, state = unchanged.extract_changed(
            snapshot=snapshot,
            entity=entity,
            key_range=key_range,
            source=source,
            target=target,
            changed_since=watermark,
            run_id=run_id,
            failed_lookup=failed_lookup,
            target_table=live_target,
            failed_batch_lookup=failed_batch_lookup,
            extract=extract,
        )
    else:
        frame = extract(
            entity.source_table,
            source_columns(entity),
            entity.source_key,
            key_range,
            changed_since=watermark,
        )
    return process_frame(
        row_state=state,
        full_rows=full_rows,
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
    row_state: unchanged.RowState | None = None,
) -> BatchOutcome:
    """Transform → validate → load + ledger for rows already in hand (a batch's extract, or
    failed records being re-processed). Idempotent per (run_id, batch_id); one target
    transaction; a dry run writes nothing. ``full_rows(key, row)`` completes a failed row
    with the source columns the plan does not read; ``row_state`` (runs.engine.unchanged):
    keys skipped unread, counted loaded and unchanged (or failed, for earlier failures
    carried), and the state stored with the batch.
    Raises SchemaError, TransientError, EngineError."""
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
    skipped = len(row_state.carried) if row_state is not None else 0
    failed_before = row_state.failed if row_state is not None else {}
    referred = failed_before if isinstance(failed_before, unchanged.FailedReference) else None
    carried = {} if referred is not None else dict(failed_before)
    # rows an earlier batch of a range carried whole filtered out (counted as it did)
    filtered = row_state.filtered if row_state is not None else 0
    # the source hash of every extracted row, computed once for the failures and the state
    hashes = (
        unchanged.frame_source_hashes(frame, source_columns(entity))
        if row_state is not None
        else None
    )
    if hashes is not None:  # a later run can tell an unchanged failure by its source hash
        failure_source_hashes(failures, frame, entity, hashes)
    outcome = BatchOutcome(
        extracted=len(frame) + skipped + len(failed_before) + filtered,
        loaded=len(rows) + skipped,
        failed=len(failures) + len(failed_before),
        filtered=result.filtered + filtered,
        duplicates=result.duplicates,
        failures=failures,
        skipped=skipped,
        carried_failures=carried,
        carried_reference=(
            {"batch": referred.batch, "count": referred.count} if referred is not None else None
        ),
        rules_hash=row_state.rules_hash if row_state is not None else "",
    )
    _check_accounting(outcome)
    if dry_run:
        return outcome
    state = {}
    if row_state is not None and hashes is not None:
        state["row_state"] = _hashed(row_state, frame, rows, hashes)
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
        **state,
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


def _hashed(
    state: unchanged.RowState, frame: pd.DataFrame, rows: pd.DataFrame, every: list[str]
) -> unchanged.RowState:
    """The row state with the source hash of each row loaded and, where the batch read its
    whole key range (a first run: no digest yet), the range's digest from the same hashes.
    ``every``: the source hash of each row of ``frame``, in order (hashed once a batch)."""
    if frame.index.is_unique:
        loaded = [every[i] for i in frame.index.get_indexer(rows.index)]
    else:  # labels repeat (not an extract's frame): by position of each label's rows
        at = pd.Series(range(len(frame)), index=frame.index).loc[rows.index]
        loaded = [every[i] for i in at.tolist()]
    if state.digest is not None:
        return replace(state, source_hashes=loaded)
    return replace(state, source_hashes=loaded, digest=unchanged.range_digest(every))


def _watermark(entity: EntitySpec, changed_since: str | None) -> ChangedSince | None:
    if changed_since is None:
        return None
    if not entity.watermark_column:
        raise EngineError(f"entity {entity.name!r} has no watermark column for a delta run")
    return (entity.watermark_column, str(changed_since))


def _validate(
    target: Connector, entity: EntitySpec, result: TransformResult, frame: pd.DataFrame
) -> tuple[pd.DataFrame, list[str], list[RowFailure]]:
    """Split transformed rows into loadable rows and load-stage failures (target types)."""
    rows = result.text_rows
    keys_at = result.source_keys.loc[rows.index]
    # the source keys too: the target's ledger keeps them (its key map), in its encoding
    errors: dict[Hashable, list[FieldError]] = (
        target.validate_rows(entity.target_table, rows, keys_at, ",".join(entity.source_key))
        if len(rows)
        else {}
    )
    labels = list(errors)
    failures = [
        RowFailure(
            source_key=str(result.source_keys.at[idx]),
            source_row=source_row,
            transformed_row=transformed_row,
            stage="load",
            errors=list(errors[idx]),
        )
        for idx, source_row, transformed_row in zip(
            labels, _records_at(frame, labels), _records_at(rows, labels), strict=True
        )
    ]
    if errors:
        rows = rows.drop(index=list(errors))
        keys_at = keys_at.drop(index=list(errors))
    keys = [str(k) for k in keys_at]
    return rows, keys, failures
