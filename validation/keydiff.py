"""The key-level part of a run's report in the user's terms: which rows the run wrote and the
target no longer holds as meant, named by their business key with the surrogate id beside it,
and for each changed row the column, the intended value and the stored value.

Scope: only the rows the run wrote decide. Target rows the run did not write (there before the
run, or written by someone else) are listed as "present, not written by this run", never as a
failure."""

from __future__ import annotations

from typing import Any

from runs.engine.reconcile import KeyDiff
from runs.engine.snapshot import EntitySpec

from .reconciliation import LISTED_KEYS, RunContext, _expected_chunks, _target_frame, _text

DETAIL_ROWS = 20  # changed rows whose columns are compared with their intended values


def key_diff_report(
    ctx: RunContext, entity: EntitySpec, diff: KeyDiff, seconds: float
) -> dict[str, Any]:
    """JSON form of a key diff for the report: counts, named keys (business key + surrogate
    id), changed columns with intended and stored value. Read-only."""
    written = _business_keys(ctx, entity, [*diff.missing[:LISTED_KEYS], *diff.changed])
    present = _external_ids(ctx, entity, diff.extra[:LISTED_KEYS])
    return {
        # only rows the run wrote decide; rows it did not write are shown, not failed
        "clean": not (diff.missing or diff.changed),
        "identical": diff.clean,
        "expected_rows": diff.expected_rows,
        "actual_rows": diff.actual_rows,
        "missing": len(diff.missing),
        "extra": len(diff.extra),
        "changed": len(diff.changed),
        "marked": diff.marked,  # delete policy "mark": rows marked as meant (they match)
        "missing_keys": diff.missing[:LISTED_KEYS],
        "extra_keys": diff.extra[:LISTED_KEYS],
        "changed_keys": diff.changed[:LISTED_KEYS],
        "missing_named": [_named(written, k) for k in diff.missing[:LISTED_KEYS]],
        "present_named": [_named(present, k) for k in diff.extra[:LISTED_KEYS]],
        "changed_named": [_named(written, k) for k in diff.changed[:LISTED_KEYS]],
        "changed_fields": _changed_fields(ctx, entity, diff.changed[:DETAIL_ROWS], written),
        "levels": diff.levels,
        "ranges_checked": diff.ranges_checked,
        "rows_fetched": diff.rows_fetched,
        "seconds": round(seconds, 3),
    }


def _named(business: dict[str, str], key: str) -> dict[str, str | None]:
    return {"key": business.get(key), "id": key}


def _business_keys(ctx: RunContext, entity: EntitySpec, target_keys: list[str]) -> dict[str, str]:
    """Target key -> source key (the business key) of rows the run wrote (its key map)."""
    if not target_keys:
        return {}
    return ctx.target.keymap_sources(ctx.snapshot.plan, entity.name, target_keys)


def _external_ids(ctx: RunContext, entity: EntitySpec, target_keys: list[str]) -> dict[str, str]:
    """Target key -> the row's external id (its business key in the target), when the entity
    has one; for rows the run did not write (no key map entry)."""
    if not target_keys or not entity.external_id:
        return {}
    if ctx.sql_target:
        from runs.engine.reconcile import pg_fetch_rows

        ident, info = ctx.table(entity)
        rows = pg_fetch_rows(
            ctx.cursor,
            table=ident,
            key=info.column(entity.target_key),
            keys=target_keys,
            columns=[entity.external_id],
        )
        return {k: r[entity.external_id] for k, r in rows.items() if r[entity.external_id]}
    frame = _target_frame(ctx, entity.target_table, [entity.target_key, entity.external_id])
    frame = frame[frame[entity.target_key].astype(str).isin(target_keys)]
    return {
        str(k): str(v)
        for k, v in zip(frame[entity.target_key], frame[entity.external_id], strict=True)
        if _text(v) is not None
    }


def _changed_fields(
    ctx: RunContext, entity: EntitySpec, target_keys: list[str], business: dict[str, str]
) -> list[dict[str, Any]]:
    """For changed rows: (business key, id, column, intended, stored) per column that differs.
    The intended values are the source rows put through the run's frozen rules again (what
    the run meant to write, as long as the source has not changed since)."""
    wanted = {business[k]: k for k in target_keys if k in business}
    if not wanted:
        return []
    columns = [f.target for f in entity.fields]
    intended: dict[str, list[str | None]] = {}
    for rows in _expected_chunks(ctx, entity):
        hit = rows[rows.index.isin(list(wanted))]
        for source_key, row in zip(hit.index, hit[columns].itertuples(index=False), strict=True):
            intended[wanted[str(source_key)]] = [_text(v) for v in row]
        if len(intended) == len(wanted):
            break
    detail = ctx.target.intended_vs_stored(
        entity.target_table, entity.target_key, intended, columns
    )
    reverse = {v: k for k, v in wanted.items()}
    return [{"business_key": reverse.get(d["key"]), **d} for d in detail]


def state_of(run: Any) -> dict[str, Any]:
    """What a report is computed from: the run's status and counters, its batches and how
    many failed records are still open. Read-only."""
    from runs.selectors import failed_record_total

    open_failures, _ = failed_record_total(run=run, filters={"status": "open"})
    return {
        "status": run.status,
        "loaded": run.loaded,
        "failed": run.failed,
        "batches": run.batches.count(),
        "open_failures": open_failures,
    }
