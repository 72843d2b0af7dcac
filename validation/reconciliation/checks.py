"""The plan's post-migration checks of one run, the target side computed over the rows the
run answers for (``mp_ledger.covered``) and compared with the expected side."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from runs.engine.connectors import KeyRange
from runs.engine.reconcile import (
    RunAggregates,
    compare_rows,
    pg_fetch_rows,
    pg_orphans,
    pg_run_aggregate,
    pg_run_aggregates,
    values_equal,
)
from runs.engine.snapshot import EntitySpec
from validation.checks import Outcome
from validation.report_cancel import ReportCancelled

from .context import LISTED_KEYS, RunContext
from .expected import (
    Expected,
    SampleSpec,
    _counts,
    _decimal,
    _post_needs,
    expected_aggregate,
)
from .sample import SampleRows

SAMPLE_CHUNK = 5_000  # sampled rows compared per round trip
AGGREGATE_KINDS = ("row_count_match", "sum_match", "category_count_match")


def post_check(
    ctx: RunContext,
    *,
    kind: str,
    params: dict,
    column: str,
    entity: EntitySpec,
    diffs: dict[str, dict],
) -> Outcome:
    """Evaluate one post-migration check for a run. Read-only; raises on engine/SQL errors."""
    if kind == "checksum":
        d = diffs[entity.name]
        return Outcome(
            d["clean"],
            f"{d['expected_rows']:,} rows as written, 0 differences",
            f"{d['missing']} missing, {d['extra']} extra, {d['changed']} changed",
            d,
        )
    if not ctx.sql_target:
        return _post_check_in_memory(ctx, kind=kind, params=params, column=column, entity=entity)
    if kind == "referential_integrity":
        return _orphans(ctx, entity, column, params["parent"])
    ident, info = ctx.table(entity)
    key = info.column(entity.target_key)
    common = {"table": ident, "key": key, "run_id": ctx.ledger_id, "entity": entity.name}
    # the target side is queried first: it overlaps the expected side's thread (prefetch)
    found = _covered(ctx, entity, common) if kind in AGGREGATE_KINDS else None
    if kind == "row_count_match":
        have = found.rows if found is not None else pg_run_aggregate(ctx.cursor, **common)
        return _count_outcome(expected_aggregate(ctx, entity).rows, have, params)
    if kind == "sum_match":
        total = (
            found.sums[column]
            if found is not None and column in found.sums
            else pg_run_aggregate(ctx.cursor, column=column, **common)
        )
        return _sum_outcome(
            expected_aggregate(ctx, entity).sums[column], Decimal(total or 0), params
        )
    if kind == "category_count_match":
        have = (
            found.counts[column]
            if found is not None and column in found.counts
            else pg_run_aggregate(ctx.cursor, column=column, by_category=True, **common)
        )
        return _category_outcome(dict(expected_aggregate(ctx, entity).counts[column]), have)
    if kind == "sample_compare":
        rows = _sample_rows(expected_aggregate(ctx, entity), params)
        return _sample(ctx, entity, rows, key, ident)
    raise ValueError(f"{kind} is not a post-migration check")


def aggregates_first(ctx: RunContext, entities: list[EntitySpec]) -> None:
    """Ask the target side of each entity's aggregate post rules (``_covered``) now, before
    any check waits for the expected side: a sample rule checked first waited for it, and the
    aggregate then ran on the report's tail (11.6 s at 10 M rows) instead of beside it. The
    same statement and answers; an entity whose table cannot be introspected is left to its
    rules (each then errors alone). Read-only; raises ReportCancelled."""
    if not ctx.sql_target:
        return
    for entity in entities:
        ctx.check("post checks")
        try:
            ident, info = ctx.table(entity)
            key = info.column(entity.target_key)
        except ReportCancelled:
            raise
        except Exception:  # noqa: BLE001, S112 - each rule of the entity reports it
            continue
        common = {"table": ident, "key": key, "run_id": ctx.ledger_id, "entity": entity.name}
        _covered(ctx, entity, common)


def _covered(ctx: RunContext, entity: EntitySpec, common: dict) -> RunAggregates | None:
    """The target side of every aggregate post rule of ``entity`` (count, sums, per-value
    counts over the rows the run answers for) in ONE statement, asked once per report; None
    when that statement fails (e.g. a sum over text): each rule then asks alone, so an error
    is its own rule's."""
    if entity.name not in ctx.covered:
        sums, categories, _ = _post_needs(ctx.run, entity)
        try:
            ctx.covered[entity.name] = pg_run_aggregates(
                ctx.cursor, sums=sorted(sums), categories=sorted(categories), **common
            )
        except Exception:  # noqa: BLE001 - asked again rule by rule, each raising its own
            ctx.covered[entity.name] = None
    return ctx.covered[entity.name]


def _sample_rows(expected: Expected, params: dict) -> SampleRows:
    spec = SampleSpec.of(params)
    return expected.samples[(spec.pct, spec.n, spec.seed)]


def _target_frame(ctx: RunContext, table: str, columns: list[str]) -> pd.DataFrame:
    """A whole target table as text (targets without SQL aggregation: SQLite, small)."""
    info = ctx.target.introspect().table(table)
    key = info.primary_key[0] if info.primary_key else columns[0]
    return ctx.target.extract(table, list(dict.fromkeys([key, *columns])), [key], KeyRange())


def _post_check_in_memory(
    ctx: RunContext, *, kind: str, params: dict, column: str, entity: EntitySpec
) -> Outcome:
    """The post checks computed in pandas over the target's rows (SQLite targets)."""
    if kind == "referential_integrity":
        parent = ctx.snapshot.entity(params["parent"])
        children = _target_frame(ctx, entity.target_table, [column])[column].dropna()
        parents = set(
            _target_frame(ctx, parent.target_table, [parent.target_key])[parent.target_key].astype(
                str
            )
        )
        orphans = sorted({str(v) for v in children if str(v) not in parents})
        n = int((~children.astype(str).isin(parents)).sum())
        return Outcome(
            n == 0,
            f"every {entity.name}.{column} names a {parent.name} row",
            f"{n:,} orphans",
            {"orphans": orphans[:20]},
        )
    columns = [f.target for f in entity.fields]
    frame = _target_frame(ctx, entity.target_table, [entity.target_key, *columns])
    written = ctx.target.ledger_row_hashes(ctx.ledger_id, entity.name)
    frame = frame[frame[entity.target_key].astype(str).isin(written)]
    expected = expected_aggregate(ctx, entity)
    if kind == "row_count_match":
        return _count_outcome(expected.rows, len(frame), params)
    if kind == "sum_match":
        return _sum_outcome(expected.sums[column], _decimal(frame[column]), params)
    if kind == "category_count_match":
        return _category_outcome(dict(expected.counts[column]), _counts(frame[column]))
    if kind == "sample_compare":
        by_key = frame.set_index(frame[entity.target_key].astype(str))
        actual = {k: {c: _text(v) for c, v in by_key.loc[k, columns].items()} for k in by_key.index}
        return _sample_outcome(ctx, entity, _sample_rows(expected, params), actual)
    raise ValueError(f"{kind} is not a post-migration check")


def _count_outcome(want: int, have: int, params: dict) -> Outcome:
    tol = params.get("tolerance_pct", 0.0)
    diff_pct = abs(have - want) * 100.0 / max(want, 1)
    return Outcome(
        diff_pct <= tol,
        f"{want:,} (± {tol:g}%)",
        f"{have:,}",
        {"difference_pct": round(diff_pct, 3)},
    )


def _sum_outcome(want: Decimal, have: Decimal, params: dict) -> Outcome:
    tol = Decimal(str(params.get("tolerance", 0)))
    return Outcome(
        abs(want - have) <= tol, f"{want} (± {tol})", f"{have}", {"difference": str(have - want)}
    )


def _category_label(value: str | None) -> str:
    return "NULL" if value is None else (value or '"" (empty)')


def _category_outcome(want: dict[str | None, int], have: dict[str | None, int]) -> Outcome:
    # NULL (None) first, then "" and the values: two categories, never one
    cats = sorted(set(want) | set(have), key=lambda c: (c is not None, c or ""))
    table = [{"category": c, "expected": want.get(c, 0), "observed": have.get(c, 0)} for c in cats]
    bad = [t for t in table if t["expected"] != t["observed"]]
    text = ", ".join(f"{_category_label(t['category'])} {t['expected']:,}" for t in table[:6])
    seen = ", ".join(f"{_category_label(t['category'])} {t['observed']:,}" for t in table[:6])
    return Outcome(not bad, text, seen, {"categories": table, "mismatched": len(bad)})


def _sample(ctx: RunContext, entity: EntitySpec, rows: SampleRows, key: Any, ident: Any) -> Outcome:
    columns = [f.target for f in entity.fields]

    def fetch(keys: list[str]) -> dict[str, dict[str, str | None]]:
        return pg_fetch_rows(ctx.cursor, table=ident, key=key, keys=keys, columns=columns)

    return _sample_outcome(ctx, entity, rows, fetch)


def _sample_outcome(
    ctx: RunContext, entity: EntitySpec, rows: SampleRows, actual_rows: Any
) -> Outcome:
    """Field-by-field comparison of the sampled expected ``rows`` (SampleSpec) with the
    target; ``actual_rows`` is a dict of target rows by key text, or a function fetching them."""
    columns = [f.target for f in entity.fields]
    diffs: list[dict[str, Any]] = []
    bad_keys: set[str] = set()
    fields = 0
    # every sampled key resolved through the key map at once, its pending pairs left pending
    # (moving all of a run's pairs in was most of a 10 M report's time)
    keys = rows.keys(SAMPLE_CHUNK)
    with ctx.target.keymap_resolved(ctx.snapshot.plan, entity.name, keys) as lookup:
        for part in rows.blocks(SAMPLE_CHUNK):  # read back from disk: bounded memory
            found = _sample_block(part, columns, lookup(list(part.index)), actual_rows)
            bad_keys.update(d["key"] for d in found)
            diffs += found[: max(0, LISTED_KEYS - len(diffs))]
            fields += len(found)
    return Outcome(
        not bad_keys,
        f"{len(rows):,} sampled rows identical",
        f"{len(bad_keys):,} rows differ ({fields} fields)",
        {"sampled": len(rows), "differences": diffs},
    )


def _sample_block(
    part: pd.DataFrame, columns: list[str], targets: dict[str, str], actual_rows: Any
) -> list[dict[str, Any]]:
    """One block of a sample compared with the target: its fields that differ."""
    wanted = list(targets.values())
    actual = (
        actual_rows(wanted)
        if callable(actual_rows)
        else {k: actual_rows[k] for k in wanted if k in actual_rows}
    )
    found = _compare_block(part, columns, targets, actual)
    if found is None:  # not text columns, or two rows under one key: value by value
        texts = [[_text(v) for v in part[c].to_numpy(dtype=object)] for c in columns]
        expected = {
            targets.get(k, f"source {k}"): dict(zip(columns, values, strict=True))
            for k, values in zip(part.index, zip(*texts, strict=True), strict=True)
        }
        found = compare_rows(expected, actual)
    business = {t: s for s, t in targets.items()}  # shown beside the surrogate id
    for d in found:
        d["business_key"] = business.get(d["key"], d["key"].removeprefix("source "))
    return found


def _compare_block(
    part: pd.DataFrame,
    columns: list[str],
    targets: dict[str, str],
    actual: Mapping[str, Mapping[str, str | None]],
) -> list[dict[str, Any]] | None:
    """``compare_rows`` of a block whose columns are all text, column by column: the values
    equal as texts (or both NULL) are settled by one array comparison, only the others go
    through ``values_equal``; the same entries in the same order (row by row, then column
    order). None when a column is not text or two rows share a key (the caller then compares
    value by value)."""
    if not all(isinstance(part[c].dtype, pd.StringDtype) for c in columns):
        return None
    keys = [targets.get(k, f"source {k}") for k in part.index]
    if len(set(keys)) != len(keys) or len(set(columns)) != len(columns):
        return None
    have = [actual.get(k) for k in keys]
    present = np.fromiter((h is not None for h in have), dtype=bool, count=len(have))
    cells: list[tuple[int, int, str | None, str | None]] = []
    for j, column in enumerate(columns):
        want = part[column].to_numpy(dtype=object, na_value=None)
        got = np.array([None if h is None else h.get(column) for h in have], dtype=object)
        differ = np.flatnonzero(present & ~(want == got).astype(bool))
        cells += [(int(i), j, want[i], got[i]) for i in differ if not values_equal(want[i], got[i])]
    out: list[dict[str, Any]] = []
    cells.sort(key=lambda c: (c[0], c[1]))
    missing = iter(np.flatnonzero(~present).tolist() + [len(keys)])
    gap = next(missing)
    for i, j, want_value, got_value in cells:
        while gap < i:
            out.append({"key": keys[gap], "field": "*", "expected": "row", "actual": None})
            gap = next(missing)
        out.append(
            {"key": keys[i], "field": columns[j], "expected": want_value, "actual": got_value}
        )
    while gap < len(keys):
        out.append({"key": keys[gap], "field": "*", "expected": "row", "actual": None})
        gap = next(missing)
    return out


def _text(value: Any) -> str | None:
    missing = value is None or value is pd.NA or (isinstance(value, float) and value != value)
    return None if missing else str(value)


def _orphans(ctx: RunContext, entity: EntitySpec, column: str, parent_name: str) -> Outcome:
    parent = ctx.snapshot.entity(parent_name)
    child_ident, child_info = ctx.table(entity)
    parent_ident, parent_info = ctx.table(parent)
    child_info.column(column)
    parent_info.column(parent.target_key)
    n, sample = pg_orphans(
        ctx.cursor,
        child=child_ident,
        column=column,
        parent=parent_ident,
        parent_key=parent.target_key,
    )
    return Outcome(
        n == 0,
        f"every {entity.name}.{column} names a {parent_name} row",
        f"{n:,} orphans",
        {"orphans": sample},
    )
