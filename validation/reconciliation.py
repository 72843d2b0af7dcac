"""Post-migration reconciliation of one run: accounting, key-level diff (ledger vs target),
and the plan's post-migration checks computed THROUGH THE MAPPING (source values transformed
with the run's own frozen rules before they are compared with the target)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from django.db.models import Count, Sum

from migration_planner.lib.memory import release_memory
from runs.connections import connector_for
from runs.engine.batch import _keymaps, source_columns
from runs.engine.connectors import KeyRange
from runs.engine.reconcile import (
    KeyDiff,
    compare_rows,
    pg_fetch_rows,
    pg_orphans,
    pg_run_aggregate,
    reconcile_in_memory,
    reconcile_pg,
)
from runs.engine.reconcile_marks import MarkSpec
from runs.engine.rules import TEXT
from runs.engine.snapshot import EntitySpec
from runs.engine.transform import transform_frame
from runs.enums import RunMode
from runs.models import COUNTERS, Batch, FailedRecord, Run
from runs.services.state import run_entities, run_ledger_id, run_snapshot

from .checks import Outcome
from .enums import ValidationPhase

if TYPE_CHECKING:
    from .prefetch import Reader

LISTED_KEYS = 50
SAMPLE_CHUNK = 5_000  # sampled rows compared per round trip
REPORT_CHUNK = 10_000  # source rows transformed at a time for the expected side


@dataclass
class RunContext:
    """What the checks of one run share: connectors, snapshot, cached expected frames."""

    run: Run
    expected: dict[str, Expected | Exception] = field(default_factory=dict)
    pending: Future | None = None  # the prefetch thread's results, until first needed

    def __post_init__(self) -> None:
        self.snapshot = run_snapshot(self.run)
        self.source = connector_for(self.run.plan.source)
        self.target = connector_for(self.run.target)
        self.ledger_id = run_ledger_id(self.run)

    @property
    def sql_target(self) -> bool:
        return getattr(self.target, "kind", "") == "postgresql"

    def table(self, entity: EntitySpec) -> tuple[Any, Any]:
        """(quoted identifier, TableInfo) of the entity's target table, checked by introspection."""
        info = self.target._table(entity.target_table)  # noqa: SLF001 - see report: needs a public API
        return self.target.table_ident(info), info

    def cursor(self):  # noqa: ANN201 - a context manager yielding a psycopg2 cursor
        return self.target._tx()  # noqa: SLF001


def accounting(run: Run) -> list[dict[str, Any]]:
    """Per entity: source rows vs loaded + failed + filtered + duplicate (balanced or not)."""
    sums = {
        row["entity"]: row
        for row in Batch.objects.filter(run=run)
        .values("entity")
        .annotate(**{c: Sum(c) for c in COUNTERS})
    }
    lines = []
    for entity in run_entities(run):
        s = {c: (sums.get(entity.name, {}).get(c) or 0) for c in COUNTERS}
        accounted = s["loaded"] + s["failed"] + s["filtered"] + s["duplicates"]
        source = run.entity_totals.get(entity.name, 0)
        lines.append(
            {
                "entity": entity.name,
                "source": source,
                **s,
                "accounted": accounted,
                "balanced": accounted == source,
                "difference": source - accounted,
            }
        )
    return lines


@dataclass
class SampleSpec:
    """A sample_compare rule's choice of rows: ``pct`` % of them, or the ``n`` first, by a
    seeded hash of the source key (deterministic, one pass, memory of the sample only)."""

    pct: float | None
    n: int | None
    seed: int

    @classmethod
    def of(cls, params: dict) -> SampleSpec:
        return cls(
            pct=params.get("pct", 5.0) if not params.get("n") else None,
            n=params.get("n"),
            seed=int(params.get("seed", 0)),
        )

    def hashes(self, keys: pd.Index) -> np.ndarray:
        seed = f"{self.seed:016d}"[-16:]
        return pd.util.hash_pandas_object(
            pd.Series(keys, dtype=object), index=False, hash_key=seed
        ).to_numpy()


@dataclass
class Expected:
    """What the run should have written for one entity, aggregated chunk by chunk: row count,
    sums and category counts of the columns rules ask for, and each sample's rows."""

    rows: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)
    counts: dict[str, Counter] = field(default_factory=dict)
    samples: dict[tuple, pd.DataFrame] = field(default_factory=dict)


def _post_needs(run: Run, entity: EntitySpec) -> tuple[set[str], set[str], list[SampleSpec]]:
    """(sum columns, category columns, sample specs) the entity's post rules need."""
    sums, cats, samples = set(), set(), []
    for rule in run.plan.validation_rules.filter(
        phase=ValidationPhase.POST, enabled=True, entity=entity.name
    ):
        if rule.kind == "sum_match":
            sums.add(rule.column)
        elif rule.kind == "category_count_match":
            cats.add(rule.column)
        elif rule.kind == "sample_compare":
            samples.append(SampleSpec.of(rule.params))
    return sums, cats, samples


def _failed_keys(run: Run, entity: EntitySpec) -> pd.Index:
    """Source keys of the entity's rows this run failed, as one hashed Index (built once)."""
    # one Index whose hash table is built once (Index.isin hashed all failed keys per chunk;
    # with a set on Arrow strings it even rebuilt a Python list each time)
    return pd.Index(
        FailedRecord.objects.filter(run=run, entity=entity.name).values_list(
            "source_key", flat=True
        ),
        dtype=object,
    )


def _expected_chunks(
    ctx: RunContext | Reader, entity: EntitySpec, failed: pd.Index | None = None
) -> Iterator[pd.DataFrame]:
    """Source rows of the entity transformed with the run's rules, minus rows this run failed,
    indexed by source key text — one key range at a time (bounded memory), in key order; by
    the reader's threads when it has them (``Reader.parallel``). Touches no Django model when
    ``failed`` is given (so it may run in a thread of its own)."""
    if failed is None:
        failed = _failed_keys(ctx.run, entity)
    # Rows transform independently except for a dedupe, which acts within a batch: such an
    # entity is read in the run's own batch ranges, any other in smaller chunks (less memory).
    size = ctx.snapshot.batch_size
    if not entity.dedupe_on:
        size = min(size, REPORT_CHUNK)
    ranges = ctx.source.key_ranges(entity.source_table, entity.source_key, size)
    parallel = getattr(ctx, "parallel", None)
    if parallel is not None:
        yield from parallel(partial(_expected_chunk, entity=entity, failed=failed), ranges)
        return
    for key_range in ranges:
        yield _expected_chunk(ctx, key_range, entity=entity, failed=failed)


def _expected_chunk(
    ctx: RunContext | Reader, key_range: Any, *, entity: EntitySpec, failed: pd.Index
) -> pd.DataFrame:
    """One key range of ``_expected_chunks`` (reads with ``ctx``'s own connectors)."""
    extract = getattr(ctx.source, "extract_text", ctx.source.extract)  # Arrow strings
    frame = extract(entity.source_table, source_columns(entity), entity.source_key, key_range)
    keymaps = _keymaps(ctx.snapshot, entity, frame, ctx.source, ctx.target, False)
    result = transform_frame(
        entity=entity,
        frame=frame,
        lookups=ctx.snapshot.lookups,
        keymaps=keymaps,
        namespace=ctx.snapshot.plan,
        failure_records=False,  # only the good rows are compared: no RowFailure built
    )
    rows = result.text_rows  # Arrow strings: no Python str per value
    rows.index = pd.Index(result.source_keys.to_numpy(dtype=object), dtype=object)
    rows = rows[failed.get_indexer(rows.index) < 0]
    if ctx.run.mode == RunMode.DELTA:
        written = ctx.target.keymap_lookup(ctx.snapshot.plan, entity.name, list(rows.index))
        rows = rows[rows.index.isin(list(written))]
    del frame, result
    release_memory(collect=False)  # chunk garbage back to the OS before the next one
    return rows


def expected_aggregate(ctx: RunContext, entity: EntitySpec) -> Expected:
    """The entity's Expected, computed in one chunked pass for every post rule it has (or
    taken from ``expected_prefetch``). Read-only; cached per run context; engine errors raise
    (an error of the prefetch is raised here, for the rule that needs it)."""
    if ctx.pending is not None:  # first need: wait for the prefetch thread
        pending, ctx.pending = ctx.pending, None
        ctx.expected.update(pending.result())
    if entity.name in ctx.expected:
        found = ctx.expected[entity.name]
        if isinstance(found, Exception):
            raise found
        return found
    needs = _post_needs(ctx.run, entity)
    out = _aggregate(ctx, entity, needs, _failed_keys(ctx.run, entity))
    ctx.expected[entity.name] = out
    return out


def _aggregate(
    ctx: RunContext | Reader,
    entity: EntitySpec,
    needs: tuple[set[str], set[str], list[SampleSpec]],
    failed: pd.Index,
) -> Expected:
    sum_cols, cat_cols, samples = needs
    out = Expected(sums={c: Decimal(0) for c in sum_cols}, counts={c: Counter() for c in cat_cols})
    limits = {(s.pct, s.n, s.seed): s for s in samples}
    picked: dict[tuple, list[pd.DataFrame]] = {k: [] for k in limits}
    smallest: dict[tuple, pd.DataFrame] = {}
    for rows in _expected_chunks(ctx, entity, failed):
        out.rows += len(rows)
        for col in sum_cols:
            out.sums[col] += _decimal(rows[col])
        for col in cat_cols:
            out.counts[col].update(_counts(rows[col]))
        for key, spec in limits.items():
            if not len(rows):
                continue
            hashed = rows.assign(mp_hash=spec.hashes(rows.index))
            # the n smallest hashes so far (a pct sample keeps 1 in case it picks none)
            prior = smallest.get(key)
            both = hashed if prior is None else pd.concat([prior, hashed])
            smallest[key] = both.nsmallest(spec.n or 1, "mp_hash")
            if not spec.n:
                share = min(max(spec.pct or 0.0, 0.0), 100.0) / 100.0
                cut = np.uint64(min(int(share * 2**64), 2**64 - 1))
                chosen = hashed[hashed["mp_hash"].to_numpy() <= cut]
                # kept as Arrow strings: Python str objects kept from every chunk would pin
                # the allocator's arenas (~150 MB never returned to the OS at 1M rows)
                picked[key].append(chosen.astype({c: TEXT for c in rows.columns}))
    for key, spec in limits.items():
        frames = picked[key] if not spec.n else []
        if not any(len(f) for f in frames):
            frames = [smallest[key]] if key in smallest else []
        chosen = pd.concat(frames) if frames else pd.DataFrame()
        out.samples[key] = chosen.drop(columns=["mp_hash"], errors="ignore").sort_index()
    return out


def key_diff(ctx: RunContext, entity: EntitySpec) -> KeyDiff:
    """Ledger row hashes vs the target's rows now (range checksums, then narrowed)."""
    if not ctx.sql_target:
        info = ctx.target.introspect().table(entity.target_table)
        return reconcile_in_memory(
            ctx.target,
            table=entity.target_table,
            key=info.column(entity.target_key),
            columns=[f.target for f in entity.fields],
            run_id=ctx.ledger_id,
            entity=entity.name,
        )
    ident, info = ctx.table(entity)
    mark = None
    if entity.delete_policy == "mark" and entity.delete_mark_column:
        mark = MarkSpec(info.column(entity.delete_mark_column), entity.delete_mark_value)
    return reconcile_pg(
        ctx.cursor,
        table=ident,
        key=info.column(entity.target_key),
        columns=info.require([f.target for f in entity.fields]),
        run_id=ctx.ledger_id,
        entity=entity.name,
        mark=mark,
    )


def diff_summary(diff: KeyDiff, seconds: float) -> dict[str, Any]:
    """JSON form of a key diff for the report (key lists capped)."""
    return {
        "clean": diff.clean,
        "expected_rows": diff.expected_rows,
        "actual_rows": diff.actual_rows,
        "missing": len(diff.missing),
        "extra": len(diff.extra),
        "changed": len(diff.changed),
        "marked": diff.marked,
        "missing_keys": diff.missing[:LISTED_KEYS],
        "extra_keys": diff.extra[:LISTED_KEYS],
        "changed_keys": diff.changed[:LISTED_KEYS],
        "levels": diff.levels,
        "ranges_checked": diff.ranges_checked,
        "rows_fetched": diff.rows_fetched,
        "seconds": round(seconds, 3),
    }


def _decimal(values: pd.Series) -> Decimal:
    total = Decimal(0)
    for v in values:
        if v is None or v is pd.NA:
            continue
        try:
            total += Decimal(str(v))
        except InvalidOperation:
            continue
    return total


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
    if kind == "row_count_match":
        have = pg_run_aggregate(ctx.cursor, **common)
        return _count_outcome(expected_aggregate(ctx, entity).rows, have, params)
    if kind == "sum_match":
        have = Decimal(pg_run_aggregate(ctx.cursor, column=column, **common) or 0)
        return _sum_outcome(expected_aggregate(ctx, entity).sums[column], have, params)
    if kind == "category_count_match":
        have = pg_run_aggregate(ctx.cursor, column=column, by_category=True, **common)
        return _category_outcome(dict(expected_aggregate(ctx, entity).counts[column]), have)
    if kind == "sample_compare":
        rows = _sample_rows(expected_aggregate(ctx, entity), params)
        return _sample(ctx, entity, rows, key, ident)
    raise ValueError(f"{kind} is not a post-migration check")


def _sample_rows(expected: Expected, params: dict) -> pd.DataFrame:
    spec = SampleSpec.of(params)
    return expected.samples[(spec.pct, spec.n, spec.seed)]


def _counts(values: pd.Series) -> dict[str, int]:
    return {
        ("" if k is None else str(k)): int(n)
        for k, n in values.astype(object)
        .where(values.notna(), None)
        .value_counts(dropna=False)
        .items()
    }


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


def _category_outcome(want: dict[str, int], have: dict[str, int]) -> Outcome:
    cats = sorted(set(want) | set(have))
    table = [{"category": c, "expected": want.get(c, 0), "observed": have.get(c, 0)} for c in cats]
    bad = [t for t in table if t["expected"] != t["observed"]]
    text = ", ".join(f"{t['category'] or 'NULL'} {t['expected']:,}" for t in table[:6])
    seen = ", ".join(f"{t['category'] or 'NULL'} {t['observed']:,}" for t in table[:6])
    return Outcome(not bad, text, seen, {"categories": table, "mismatched": len(bad)})


def _sample(
    ctx: RunContext, entity: EntitySpec, rows: pd.DataFrame, key: Any, ident: Any
) -> Outcome:
    columns = [f.target for f in entity.fields]

    def fetch(keys: list[str]) -> dict[str, dict[str, str | None]]:
        return pg_fetch_rows(ctx.cursor, table=ident, key=key, keys=keys, columns=columns)

    return _sample_outcome(ctx, entity, rows, fetch)


def _sample_outcome(
    ctx: RunContext, entity: EntitySpec, rows: pd.DataFrame, actual_rows: Any
) -> Outcome:
    """Field-by-field comparison of the sampled expected ``rows`` (SampleSpec) with the
    target; ``actual_rows`` is a dict of target rows by key text, or a function fetching them."""
    columns = [f.target for f in entity.fields]
    diffs: list[dict[str, Any]] = []
    bad_keys: set[str] = set()
    fields = 0
    for start in range(0, len(rows), SAMPLE_CHUNK):  # bounded memory for large samples
        part = rows.iloc[start : start + SAMPLE_CHUNK]
        targets = ctx.target.keymap_lookup(ctx.snapshot.plan, entity.name, list(part.index))
        wanted = list(targets.values())
        actual = (
            actual_rows(wanted)
            if callable(actual_rows)
            else {k: actual_rows[k] for k in wanted if k in actual_rows}
        )
        texts = [[_text(v) for v in part[c].to_numpy(dtype=object)] for c in columns]
        expected = {
            targets.get(k, f"source {k}"): dict(zip(columns, values, strict=True))
            for k, values in zip(part.index, zip(*texts, strict=True), strict=True)
        }
        found = compare_rows(expected, actual)
        business = {t: s for s, t in targets.items()}  # shown beside the surrogate id
        for d in found:
            d["business_key"] = business.get(d["key"], d["key"].removeprefix("source "))
        bad_keys.update(d["key"] for d in found)
        diffs += found[: max(0, LISTED_KEYS - len(diffs))]
        fields += len(found)
    return Outcome(
        not bad_keys,
        f"{len(rows):,} sampled rows identical",
        f"{len(bad_keys):,} rows differ ({fields} fields)",
        {"sampled": len(rows), "differences": diffs},
    )


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


def failures_by(run: Run, field_name: str) -> list[dict[str, Any]]:
    """Failed-record counts grouped by one field (category, rule...), largest first."""
    rows = (
        FailedRecord.objects.filter(run=run)
        .values(field_name)
        .annotate(n=Count("id"))
        .order_by("-n", field_name)
    )
    return [{"label": r[field_name] or "—", "value": r["n"]} for r in rows]
