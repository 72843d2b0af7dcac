"""Transform step: row filters, per-field rule chains, failures, dedupe (pure, no I/O).

``transform_frame`` is a pure function of its inputs: calling it twice on the same frame gives
the same result. Every input row ends up in exactly one of ``rows``, ``failures``, ``filtered``
or ``duplicates``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runs.engine.errors import SchemaError
from runs.engine.rules import (
    REGISTRY,
    TEXT,
    RuleContext,
    RuleParamError,
    as_text,
    to_python,
    validate_params,
)
from runs.engine.rules.core import _arrow, _blank, _series
from runs.engine.snapshot import EntitySpec, FieldSpec, FilterSpec, LookupSpec

KEY_SEPARATOR = "|"


@dataclass
class FieldError:
    """Why one field of one row failed."""

    field: str
    rule: str
    value: str | None
    message: str
    category: str


@dataclass
class RowFailure:
    """A row that cannot be loaded, with every field error (the first is the headline).

    ``transformed_row`` holds every field's chain output; a failed field holds the value its
    failing step received (None where the chain produced nothing).
    """

    source_key: str
    source_row: dict[str, str | None]
    transformed_row: dict[str, str | None]
    stage: str  # "extract" | "transform" | "load"
    errors: list[FieldError] = field(default_factory=list)
    # hash of the source row (runs.engine.unchanged) when the batch keeps row state, else ""
    source_hash: str = ""

    @property
    def category(self) -> str:
        return self.errors[0].category

    @property
    def field(self) -> str:
        return self.errors[0].field

    @property
    def rule(self) -> str:
        return self.errors[0].rule

    @property
    def message(self) -> str:
        return self.errors[0].message


@dataclass
class TransformResult:
    """Good rows (target columns), their source keys and the rest.

    ``text_rows`` holds the rows as Arrow-backed ``TEXT`` columns (missing = NA): what the
    engine validates and loads, with no Python ``str`` per value. ``rows`` is the same frame
    as ``object`` dtype holding ``str``/``None`` (built on first use, for previews and tests).
    """

    text_rows: pd.DataFrame
    source_keys: pd.Series
    failures: list[RowFailure]
    filtered: int
    duplicates: int

    @cached_property
    def rows(self) -> pd.DataFrame:
        """The good rows as ``object`` columns of ``str``/``None`` (converted once)."""
        frame = self.text_rows
        return pd.DataFrame({c: to_python(frame[c]) for c in frame.columns}, index=frame.index)


@dataclass
class _FieldOutcome:
    values: pd.Series  # TEXT; a failed row holds the value its failing step received
    failed: np.ndarray
    errors: dict[int, list[FieldError]]  # row position -> the field's errors, chain order


# --------------------------------------------------------------------------- source keys


def source_key_text(frame: pd.DataFrame, key_cols: tuple[str, ...] | list[str]) -> pd.Series:
    """Each row's source key as text (composite keys joined with '|'); pure; SchemaError."""
    return to_python(source_key_arrow(frame, key_cols))


def source_key_arrow(frame: pd.DataFrame, key_cols: tuple[str, ...] | list[str]) -> pd.Series:
    """``source_key_text`` as ``TEXT`` (Arrow strings: no Python str per key); pure;
    SchemaError."""
    _require_columns(frame, key_cols, "source key")
    if not key_cols:
        raise SchemaError("the entity has no source key columns")
    if len(key_cols) == 1:
        return as_text(frame[key_cols[0]]).fillna("")
    parts = [pa.array(as_text(frame[c]).array).cast(pa.large_string()) for c in key_cols]
    sep = pa.scalar(KEY_SEPARATOR, pa.large_string())
    joined = pc.binary_join_element_wise(*parts, sep, null_handling="replace", null_replacement="")
    return pd.Series(TEXT.__from_arrow__(joined), index=frame.index)


def all_text(frame: pd.DataFrame) -> bool:
    """Whether every column of ``frame`` is ``TEXT`` and no column name repeats (pure)."""
    return frame.columns.is_unique and all(dtype == TEXT for dtype in frame.dtypes)


def _require_columns(frame: pd.DataFrame, columns: Any, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{what} column(s) not in the extracted frame: {', '.join(missing)}")


# --------------------------------------------------------------------------- filters


def _compare(text: pd.Series, op: str, value: Any) -> np.ndarray:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if isinstance(value, bool) or pd.isna(number):
        left, right = text, str(value)
    else:
        left, right = pd.to_numeric(text, errors="coerce"), number
    result = {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}
    return pd.Series(result[op]).fillna(False).to_numpy(dtype=bool)


def _filter_keep(text: pd.Series, spec: FilterSpec) -> np.ndarray:
    """Rows kept by one filter; nulls fail every test but ne/not_in/is_null (blanks: gt..le too)."""
    null = text.isna().to_numpy(dtype=bool)
    blank = null | (text.fillna("") == "").to_numpy(dtype=bool)
    op, value = spec.op, spec.value
    if op in ("eq", "ne"):
        hit = (text == str(value)).fillna(False).to_numpy(dtype=bool)
        return hit if op == "eq" else ~hit
    if op in ("in", "not_in"):
        options = [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
        hit = text.isin(options).to_numpy(dtype=bool) & ~null
        return hit if op == "in" else ~hit
    if op in ("is_null", "not_null"):
        return blank if op == "is_null" else ~blank
    if op in ("gt", "ge", "lt", "le"):
        return _compare(text, op, value) & ~blank
    if op == "regex":
        try:
            re.compile(str(value))
        except re.error as exc:
            raise RuleParamError("value", f"invalid filter regex: {exc}") from None
        return text.str.contains(str(value), regex=True).fillna(False).to_numpy(dtype=bool)
    raise RuleParamError("op", f"unknown filter operator {op!r}")


def _filter_mask(frame: pd.DataFrame, filters: tuple[FilterSpec, ...]) -> np.ndarray:
    keep = np.ones(len(frame), dtype=bool)
    _require_columns(frame, [f.column for f in filters], "filter")
    for spec in filters:
        keep &= _filter_keep(as_text(frame[spec.column]), spec)
    return keep


# --------------------------------------------------------------------------- field chains


def _chain_input(frame: pd.DataFrame, spec: FieldSpec) -> pd.Series | pd.DataFrame:
    _require_columns(frame, spec.sources, f"field {spec.target!r} source")
    if not spec.sources:
        return pd.Series(pd.NA, index=frame.index, dtype=TEXT)
    if len(spec.sources) == 1:
        return as_text(frame[spec.sources[0]])
    return frame[list(spec.sources)]


def _texts_at(values: pd.Series, positions: np.ndarray) -> list[str | None]:
    """The values at ``positions`` as ``str``/``None`` (``to_python`` of those rows), taken
    by Arrow: no pandas row indexing and no object column per call. Pure."""
    return _arrow(values).take(pa.array(positions, pa.int64())).to_pylist()


def _describe(values: pd.Series | pd.DataFrame, positions: np.ndarray) -> list[str | None]:
    """The failing rows' input values as text (several columns joined with '|')."""
    if isinstance(values, pd.Series):
        return _texts_at(values, positions)
    cols = [_texts_at(values[c], positions) for c in values.columns]
    return [KEY_SEPARATOR.join(v or "" for v in row) for row in zip(*cols, strict=True)]


def _passed_through(
    before: pd.Series | pd.DataFrame, after: pd.Series, positions: np.ndarray
) -> np.ndarray:
    """Which failing rows a step left unchanged (a validating step: later steps still see the
    real value, so their verdicts on it mean something)."""
    if isinstance(before, pd.DataFrame) or not len(positions):
        return np.zeros(len(positions), dtype=bool)
    at = pa.array(positions, pa.int64())
    a, b = _arrow(before).take(at), _arrow(after).take(at)
    # as Python's == on str/None: null equals null only
    same = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(a.is_null(), b.is_null()))
    return same.to_numpy(zero_copy_only=False)


def _run_chain(frame: pd.DataFrame, spec: FieldSpec, ctx: RuleContext) -> _FieldOutcome:
    """Apply one field's steps and record every failing step of a row: after a step fails a
    row, later steps' errors still count while every failing step so far left the value
    unchanged (validators); once a failing step changed it (e.g. to null), later steps only
    see an artefact and their verdicts on that row are not recorded."""
    current = _chain_input(frame, spec)
    failed = np.zeros(len(frame), dtype=bool)
    blocked = np.zeros(len(frame), dtype=bool)  # rows whose failing step changed the value
    errors: dict[int, list[FieldError]] = {}
    stuck: dict[int, str | None] = {}
    for step in spec.steps:
        rule = REGISTRY.get(step.rule)
        params = validate_params(step.rule, step.params)
        if isinstance(current, pd.DataFrame) and not rule.accepts_frame:
            raise RuleParamError(
                "rule",
                f"field {spec.target!r}: {step.rule!r} takes one "
                "column; start the chain with concat or coalesce",
            )
        result = rule.fn(current, params, ctx)
        if result.errors is not None:
            messages = result.errors.to_numpy(dtype=object)
            new = pd.notna(messages) & ~blocked
            positions = np.flatnonzero(new)
            # Python ints as keys (a numpy integer hashes ~3x slower; equal keys either way)
            for pos, value, msg in zip(
                positions.tolist(),
                _describe(current, positions),
                messages[positions].tolist(),
                strict=True,
            ):
                errors.setdefault(pos, []).append(
                    FieldError(spec.target, step.rule, value, msg, rule.category)
                )
                stuck.setdefault(pos, value)
            kept = _passed_through(current, result.values, positions)
            blocked[positions[~kept]] = True
            failed |= new
        current = result.values
    if isinstance(current, pd.DataFrame):
        raise RuleParamError(
            "rule",
            f"field {spec.target!r} has several sources; start the chain with concat or coalesce",
        )
    values = as_text(current)
    if stuck:
        positions = np.fromiter(stuck, dtype=np.int64, count=len(stuck))
        texts = list(stuck.values())
        fill = pa.array([texts[i] for i in np.argsort(positions)], pa.large_string())
        mask = np.zeros(len(values), dtype=bool)
        mask[positions] = True  # replace_with_mask fills the masked rows in row order
        values = _series(pc.replace_with_mask(_arrow(values), pa.array(mask), fill), values.index)
    return _FieldOutcome(values, failed, errors)


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _finish_field(spec: FieldSpec, outcome: _FieldOutcome) -> _FieldOutcome:
    """Apply the field default to empty results, then fail empty required fields."""
    if spec.default is None and not spec.required:
        return outcome  # nothing to fill or fail: no blank mask to compute
    values = outcome.values
    blank = _blank(values) & ~outcome.failed
    if spec.default is not None and blank.any():
        default = pa.scalar(_default_text(spec.default), pa.large_string())
        values = _series(pc.if_else(pa.array(blank), default, _arrow(values)), values.index)
        blank = np.zeros(len(values), dtype=bool)
    if spec.required and blank.any():
        for pos in np.flatnonzero(blank):
            outcome.errors[pos] = [
                FieldError(spec.target, "required", None, "a value is required", "required_missing")
            ]
        outcome.failed = outcome.failed | blank
    outcome.values = values
    return outcome


# --------------------------------------------------------------------------- assembly


def _failures(
    frame: pd.DataFrame,
    out: pd.DataFrame,
    keys: pd.Series,
    outcomes: list[_FieldOutcome],
    records: bool = True,
) -> tuple[list[RowFailure], np.ndarray]:
    """One RowFailure per row with any field error (errors in field order); with
    ``records=False`` only the mask of failed rows (no RowFailure is built)."""
    failed = np.zeros(len(frame), dtype=bool)
    for outcome in outcomes:
        failed |= outcome.failed
    if not records:
        return [], failed
    from runs.engine.failure_block import transform_failures  # (it builds on RowFailure)

    return transform_failures(frame, out, keys, outcomes, failed), failed


def _duplicates(out: pd.DataFrame, good: np.ndarray, dedupe_on: tuple[str, ...]) -> np.ndarray:
    """Good rows repeating an earlier good row's dedupe values (rows with a null never do)."""
    dup = np.zeros(len(out), dtype=bool)
    if not dedupe_on or not good.any():
        return dup
    unknown = [c for c in dedupe_on if c not in out.columns]
    if unknown:
        raise SchemaError(f"dedupe column(s) are not target fields: {', '.join(unknown)}")
    subset = out.loc[good, list(dedupe_on)]
    has_null = subset.isna().any(axis=1).to_numpy(dtype=bool)
    dup[np.flatnonzero(good)] = subset.duplicated(keep="first").to_numpy(dtype=bool) & ~has_null
    return dup


def transform_frame(
    *,
    entity: EntitySpec,
    frame: pd.DataFrame,
    lookups: Mapping[str, LookupSpec] | None = None,
    keymaps: Mapping[str, Mapping[str, str]] | None = None,
    namespace: str = "",
    failure_records: bool = True,
) -> TransformResult:
    """Filter, transform, fail and dedupe one extracted frame; pure; SchemaError/RuleParamError.
    ``failure_records=False``: the same good rows, but no RowFailure is built for the failed
    ones (``failures`` is empty) — for callers that only need the good rows (the report)."""
    keep = _filter_mask(frame, entity.filters)
    kept = (frame if keep.all() else frame[keep]).reset_index(drop=True)
    if not all_text(kept):  # (an extract's frame is TEXT already: not built again)
        kept = pd.DataFrame({c: as_text(kept[c]) for c in kept.columns}, index=kept.index)
    labels = frame.index[keep]
    keys = source_key_text(kept, entity.source_key)
    ctx = RuleContext(
        lookups=lookups or {}, keymaps=keymaps or {}, source_keys=keys, namespace=namespace
    )
    outcomes = [_finish_field(f, _run_chain(kept, f, ctx)) for f in entity.fields]
    # Arrow strings end to end (validate, COPY): no Python str per value on the load path
    out = pd.DataFrame(
        {f.target: as_text(o.values) for f, o in zip(entity.fields, outcomes, strict=True)},
        index=kept.index,
    )
    failures, failed = _failures(kept, out, keys, outcomes, failure_records)
    dup = _duplicates(out, ~failed, entity.dedupe_on)
    good = ~failed & ~dup
    rows = out[good].copy()
    rows.index = labels[good]
    good_keys = keys[good].copy()
    good_keys.index = rows.index
    return TransformResult(
        text_rows=rows,
        source_keys=good_keys,
        failures=failures,
        filtered=int((~keep).sum()),
        duplicates=int(dup.sum()),
    )
