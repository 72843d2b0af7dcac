"""The expected side of a run's post checks: the source rows the run answered for, put
through its own frozen rules again, aggregated chunk by chunk (row count, sums, category
counts, samples)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from migration_planner.lib.memory import release_memory
from runs.engine.batch import _keymaps, source_columns
from runs.engine.rules import TEXT
from runs.engine.rules.core import _arrow
from runs.engine.snapshot import EntitySpec
from runs.engine.transform import all_text, source_key_arrow, transform_frame
from runs.enums import RunMode
from runs.models import Run
from runs.selectors.carried import failed_records_of
from validation.enums import ValidationPhase

from .keyset import KeySet
from .sample import SampleRows, sample_rows_of

if TYPE_CHECKING:
    from validation.prefetch import Reader

    from .context import RunContext

REPORT_CHUNK = 20_000  # source rows transformed at a time for the expected side
DROP_FAILED_FIRST = (
    True  # the run's failed rows left out before the transform (a test turns it off)
)


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
        """Each key's seeded 64-bit hash: pandas' ``hash_pandas_object`` of the keys (pure)."""
        seed = f"{self.seed:016d}"[-16:]
        # categorize=False: the same hash per value (pandas hashes the distinct values alike
        # and takes them back by code), without factorizing keys that are all distinct anyway
        return pd.util.hash_pandas_object(
            pd.Series(keys, dtype=object), index=False, hash_key=seed, categorize=False
        ).to_numpy()


@dataclass
class Expected:
    """What the run should have written for one entity, aggregated chunk by chunk: row count,
    sums and category counts of the columns rules ask for, and each sample's rows."""

    rows: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)
    counts: dict[str, Counter] = field(default_factory=dict)
    samples: dict[tuple, SampleRows] = field(default_factory=dict)

    def close(self) -> None:
        """Drop the samples' temporary files (idempotent)."""
        for rows in self.samples.values():
            rows.close()


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


def _failed_keys(run: Run, entity: EntitySpec) -> KeySet:
    """Source keys of the entity's rows this run failed, as one compact exact set (built
    once, streamed from the database: no list of every key in Python). Read-only."""
    return KeySet(  # those it carries by reference too
        failed_records_of(run=run, entity=entity.name)
        .order_by()  # KeySet sorts: no join to the run for the model's order, no sort
        .values_list("source_key", flat=True)
        .iterator(chunk_size=20_000)
    )


def chunk_size(snapshot: Any, entity: EntitySpec) -> int:
    """Source rows in one key range of the expected side (pure)."""
    # Rows transform independently except for a dedupe, which acts within a batch: such an
    # entity is read in the run's own batch ranges, any other in smaller chunks (less memory).
    size = snapshot.batch_size
    return size if entity.dedupe_on else min(size, REPORT_CHUNK)


def _expected_chunks(
    ctx: RunContext | Reader, entity: EntitySpec, failed: KeySet | None = None
) -> Iterator[pd.DataFrame]:
    """Source rows of the entity transformed with the run's rules, minus rows this run failed,
    indexed by source key text — one key range at a time (bounded memory), in key order; by
    the reader's threads when it has them (``Reader.parallel``). Touches no Django model when
    ``failed`` is given (so it may run in a thread of its own)."""
    if failed is None:
        failed = _failed_keys(ctx.run, entity)
    ranges = ctx.source.key_ranges(
        entity.source_table, entity.source_key, chunk_size(ctx.snapshot, entity)
    )
    parallel = getattr(ctx, "parallel", None)
    if parallel is not None:
        yield from parallel(partial(_expected_chunk, entity=entity, failed=failed), ranges)
        return
    for key_range in ranges:
        yield _expected_chunk(ctx, key_range, entity=entity, failed=failed)


def _expected_chunk(
    ctx: RunContext | Reader, key_range: Any, *, entity: EntitySpec, failed: KeySet
) -> pd.DataFrame:
    """One key range of ``_expected_chunks`` (reads with ``ctx``'s own connectors)."""
    extract = getattr(ctx.source, "extract_text", ctx.source.extract)  # Arrow strings
    frame = extract(entity.source_table, source_columns(entity), entity.source_key, key_range)
    early = DROP_FAILED_FIRST and not entity.dedupe_on
    if early and len(failed):
        # rows transform independently (as the chunking above): a row the run failed is
        # dropped before its transform, not after (a 10 M run fails 1.66 M of them)
        # the keys as Arrow strings: KeySet encodes them from Arrow anyway
        frame = frame[~failed.contains(source_key_arrow(frame, entity.source_key))]
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
    if not early:  # a dedupe acts across rows (a row failed at load still counts in it)
        rows = rows[~failed.contains(rows.index)]
    if ctx.run.mode == RunMode.DELTA:
        written = ctx.target.keymap_lookup(ctx.snapshot.plan, entity.name, list(rows.index))
        rows = rows[rows.index.isin(list(written))]
    del frame, result
    release_memory(collect=False)  # chunk garbage back to the OS before the next one
    return rows


def _expected_parts(
    ctx: RunContext | Reader,
    entity: EntitySpec,
    failed: KeySet,
    needs: tuple[set[str], set[str], list[SampleSpec]],
) -> Iterator[Part]:
    """The Part of every key range of ``_expected_chunks``, in key order: by the reader's
    threads (and a helper on another worker, ``Reader.parts``) when it has them."""
    parts = getattr(ctx, "parts", None)
    if parts is not None:
        yield from parts(entity, failed, needs)
        return
    for rows in _expected_chunks(ctx, entity, failed):
        yield _part(rows, needs)


def _range_part(
    ctx: RunContext | Reader,
    key_range: Any,
    *,
    entity: EntitySpec,
    failed: KeySet,
    needs: tuple[set[str], set[str], list[SampleSpec]],
) -> Part:
    """One key range's Part (reads with ``ctx``'s own connectors; touches no Django model)."""
    return _part(_expected_chunk(ctx, key_range, entity=entity, failed=failed), needs)


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
    failed: KeySet,
) -> Expected:
    sum_cols, cat_cols, samples = needs
    out = Expected(sums={c: Decimal(0) for c in sum_cols}, counts={c: Counter() for c in cat_cols})
    limits = {(s.pct, s.n, s.seed): s for s in samples}
    # a pct sample goes to disk as it is picked (SampleRows): memory of one block, not of
    # the whole sample (417,000 rows at 10 M, held up to three times when kept as frames)
    picked = {k: SampleRows() for k, s in limits.items() if not s.n}
    smallest: dict[tuple, pd.DataFrame] = {}
    try:
        for part in _expected_parts(ctx, entity, failed, needs):
            _merge(out, part, limits, smallest, picked)
    except BaseException:
        for rows in picked.values():
            rows.close()
        raise
    for key in limits:
        chosen = picked.get(key)
        if chosen is None or not len(chosen):  # the n first, or a pct sample that picked none
            if chosen is not None:
                chosen.close()
            frame = smallest[key] if key in smallest else pd.DataFrame()
            chosen = sample_rows_of(frame.drop(columns=["mp_hash"], errors="ignore").sort_index())
        chosen.finish()
        out.samples[key] = chosen
    return out


@dataclass
class Part:
    """One key range's share of an Expected: its row count, sums and category counts, and
    per sample its n smallest-hash rows (with ``mp_hash``) and a pct sample's rows under the
    cut. Parts merged in key-range order (``_merge``) give what one pass over all rows gives."""

    rows: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)
    counts: dict[str, Counter] = field(default_factory=dict)
    smallest: dict[tuple, pd.DataFrame] = field(default_factory=dict)
    picked: dict[tuple, pd.DataFrame] = field(default_factory=dict)


def _part(rows: pd.DataFrame, needs: tuple[set[str], set[str], list[SampleSpec]]) -> Part:
    """The Part of one key range's expected rows (pure)."""
    sum_cols, cat_cols, samples = needs
    out = Part(
        rows=len(rows),
        sums={c: _decimal(rows[c]) for c in sum_cols},
        counts={c: Counter(_counts(rows[c])) for c in cat_cols},
    )
    if not len(rows):
        return out
    for spec in samples:
        key = (spec.pct, spec.n, spec.seed)
        hashes = spec.hashes(rows.index)
        # only the chunk's n smallest can be among the n smallest so far: the chunk's other
        # rows are not copied
        n = spec.n or 1
        top = np.sort(np.argsort(hashes, kind="stable")[:n]) if len(hashes) > n else slice(None)
        out.smallest[key] = rows.iloc[top].assign(mp_hash=hashes[top])
        if not spec.n:
            share = min(max(spec.pct or 0.0, 0.0), 100.0) / 100.0
            cut = np.uint64(min(int(share * 2**64), 2**64 - 1))
            # kept as Arrow strings: Python str objects kept from every chunk would pin the
            # allocator's arenas (~150 MB never returned to the OS at 1M rows)
            chosen = rows[hashes <= cut]
            if not all_text(chosen):
                chosen = chosen.astype({c: TEXT for c in rows.columns})
            out.picked[key] = chosen
    return out


def _merge(
    out: Expected,
    part: Part,
    limits: dict[tuple, SampleSpec],
    smallest: dict[tuple, pd.DataFrame],
    picked: dict[tuple, SampleRows],
) -> None:
    """Add the next key range's Part to ``out`` (parts must come in key-range order)."""
    out.rows += part.rows
    for col, total in part.sums.items():
        out.sums[col] += total
    for col, counted in part.counts.items():
        out.counts[col].update(counted)
    for key, spec in limits.items():
        if key in part.smallest:
            _keep_smallest(spec, part.smallest[key], smallest, key)
        if key in part.picked and key in picked:
            picked[key].add(part.picked[key])


def _keep_smallest(
    spec: SampleSpec, hashed: pd.DataFrame, smallest: dict[tuple, pd.DataFrame], key: tuple
) -> None:
    n = spec.n or 1
    prior = smallest.get(key)
    # a full n smallest that no row of the chunk beats stays as it is (on a tie the earlier
    # row is kept): most chunks of a pct sample then copy no row for it
    beaten = (
        len(hashed) > 0 and prior is not None and hashed["mp_hash"].min() < prior["mp_hash"].max()
    )
    if prior is None or len(prior) < n or beaten:
        both = hashed if prior is None else pd.concat([prior, hashed])
        smallest[key] = both.nsmallest(n, "mp_hash")


def _pick(
    spec: SampleSpec,
    rows: pd.DataFrame,
    smallest: dict[tuple, pd.DataFrame],
    picked: SampleRows | None,
    key: tuple,
) -> None:
    """One chunk's part of a sample: the n smallest hashes so far (a pct sample keeps 1 in
    case it picks none), and a pct sample's rows whose hash is under its cut."""
    part = _part(rows, (set(), set(), [spec]))
    spec_key = (spec.pct, spec.n, spec.seed)
    if spec_key in part.smallest:
        _keep_smallest(spec, part.smallest[spec_key], smallest, key)
    if picked is not None and spec_key in part.picked:
        picked.add(part.picked[spec_key])


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


def _counts(values: pd.Series) -> dict[str | None, int]:
    """Rows per value, NULL as None (a category of its own, never merged with ""), values
    that print alike added up; pure. Arrow strings are counted by Arrow."""
    if values.dtype == TEXT:
        counted = pc.value_counts(_arrow(values))
        found = counted.field("values").to_pylist()
        return dict(zip(found, counted.field("counts").to_pylist(), strict=True))
    out: dict[str | None, int] = {}
    for k, n in (
        values.astype(object).where(values.notna(), None).value_counts(dropna=False).items()
    ):
        value = None if k is None or pd.isna(k) else str(k)
        out[value] = out.get(value, 0) + int(n)
    return out
