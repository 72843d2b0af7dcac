"""Validation rule kinds: parameter schema and checking, and pre-migration evaluation on the
source (pandas over extracted columns, so any source connector works)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migration_planner.lib.errors import ApplicationError
from runs.engine.connectors import Connector, KeyRange
from runs.engine.safe_regex import RegexRefused, regex_compile
from runs.engine.snapshot import EntitySpec

NAMED_PATTERNS = {
    "email": r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}",
    "us_phone": r"(\+?1[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}",
    "us_zip": r"[0-9]{5}(-[0-9]{4})?",
    "iso_date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
}

# kind -> (needs a column, {param: (type, required, help)})
KIND_PARAMS: dict[str, tuple[bool, dict[str, tuple[type, bool, str]]]] = {
    "row_count_range": (
        False,
        {"min": (int, False, "fewest rows"), "max": (int, False, "most rows")},
    ),
    "unique": (True, {}),
    "completeness": (True, {"min_pct": (float, True, "% of rows non-empty, 0–100")}),
    "format": (
        True,
        {
            "pattern": (str, True, "regex or email / us_phone / us_zip / iso_date"),
            "min_pct": (float, False, "% of non-empty values matching (default 100)"),
        },
    ),
    "row_count_match": (False, {"tolerance_pct": (float, False, "allowed difference in %")}),
    "sum_match": (True, {"tolerance": (float, False, "allowed absolute difference")}),
    "category_count_match": (True, {}),
    "sample_compare": (
        False,
        {
            "pct": (float, False, "sample size in % of rows"),
            "n": (int, False, "sample size in rows"),
            "seed": (int, False, "random seed (repeatable sample)"),
        },
    ),
    "referential_integrity": (True, {"parent": (str, True, "parent entity name")}),
    "checksum": (False, {}),
}


def _coerce(name: str, kind: type, value: Any) -> Any:
    if kind is str:
        return str(value).strip()
    try:
        number = kind(value)
    except (TypeError, ValueError):
        label = "a whole number" if kind is int else "a number"
        raise ApplicationError(f"“{name}” must be {label}, not “{value}”.", field=name) from None
    if number < 0:
        raise ApplicationError(f"“{name}” cannot be negative.", field=name)
    return number


def _check_ranges(kind: str, p: dict) -> None:
    if kind == "row_count_range":
        if "min" not in p and "max" not in p:
            raise ApplicationError("Give a minimum, a maximum or both.", field="min")
        if "min" in p and "max" in p and p["min"] > p["max"]:
            raise ApplicationError("The minimum is larger than the maximum.", field="max")
    for pct in ("min_pct", "tolerance_pct", "pct"):
        if pct in p and p[pct] > 100:
            raise ApplicationError(f"“{pct}” is a percentage: 0 to 100.", field=pct)
    if kind == "sample_compare":
        if ("pct" in p) == ("n" in p):
            raise ApplicationError("Give either a percentage or a number of rows.", field="pct")
        if p.get("pct", 1) <= 0 or p.get("n", 1) < 1:
            raise ApplicationError("The sample must not be empty.", field="pct")
    if kind == "format":
        pattern = NAMED_PATTERNS.get(p["pattern"], p["pattern"])
        try:
            regex_compile(pattern)
        except RegexRefused as exc:
            raise ApplicationError(f"The pattern is refused: {exc}.", field="pattern") from None


def rule_params_clean(*, kind: str, column: str, params: dict) -> dict:
    """Typed, checked parameters of a rule kind; raises ApplicationError naming the field."""
    if kind not in KIND_PARAMS:
        raise ApplicationError(f"Unknown check “{kind}”.", field="kind")
    needs_column, spec = KIND_PARAMS[kind]
    if needs_column and not column.strip():
        raise ApplicationError("This check needs a column.", field="column")
    unknown = set(params) - set(spec)
    if unknown:
        raise ApplicationError(
            f"Unknown parameter(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0]
        )
    clean = {}
    for name, (typ, required, _help) in spec.items():
        value = params.get(name)
        if value in (None, ""):
            if required:
                raise ApplicationError(f"“{name}” is required ({_help}).", field=name)
            continue
        clean[name] = _coerce(name, typ, value)
    _check_ranges(kind, clean)
    return clean


@dataclass
class Outcome:
    """A check's verdict: ok, expected and observed (as text), details for the report."""

    ok: bool
    expected: str
    observed: str
    details: dict[str, Any] = field(default_factory=dict)


def pre_check(
    *,
    kind: str,
    params: dict,
    column: str,
    entity: EntitySpec,
    source: Connector,
    ranges: dict[str, list[KeyRange]] | None = None,
    counts: dict[str, int] | None = None,
) -> Outcome:
    """Evaluate one pre-migration check on the source table. Read-only; reads the column in
    chunks (column_scan.CHUNK_ROWS; uniqueness is counted by the database); engine errors
    raise. Pass one ``ranges`` dict to several calls to plan each entity's chunks once;
    ``counts``: entity -> its whole table's row count, read already (a run's planning)."""
    ranges = {} if ranges is None else ranges
    if kind == "row_count_range":
        known = (counts or {}).get(entity.name)
        n = source.count(entity.source_table) if known is None else known
        lo, hi = params.get("min"), params.get("max")
        ok = (lo is None or n >= lo) and (hi is None or n <= hi)
        return Outcome(
            ok, f"{lo if lo is not None else '…'} – {hi if hi is not None else '…'}", f"{n:,} rows"
        )
    if kind == "unique":
        repeated, sample = source.duplicate_values(entity.source_table, column, 20)
        return Outcome(
            repeated == 0,
            "0 duplicated values",
            f"{repeated:,} duplicated values",
            {"examples": sample},
        )
    if kind in COLUMN_SCAN_KINDS:
        return column_checks([(kind, params, column)], entity=entity, source=source, ranges=ranges)[
            0
        ]
    raise ApplicationError(f"“{kind}” is not a pre-migration check.", field="kind")


COLUMN_SCAN_KINDS = ("completeness", "format")


def _accumulator(kind: str, params: dict) -> Any:
    # pyarrow is imported here, not at module level: app start-up (the web processes and
    # the Celery parent process) stays free of pandas/pyarrow (~100 MB each)
    from . import column_scan

    if kind == "completeness":
        return column_scan.FilledCount()
    return column_scan.FormatScan(NAMED_PATTERNS.get(params["pattern"], params["pattern"]))


def _scan_outcome(kind: str, params: dict, acc: Any) -> Outcome:
    if kind == "completeness":
        pct = 100.0 * acc.filled / acc.rows if acc.rows else 100.0
        return Outcome(pct >= params["min_pct"], f"≥ {params['min_pct']:g}%", f"{pct:.2f}%")
    pct = 100.0 * (acc.total - acc.bad) / acc.total if acc.total else 100.0
    want = params.get("min_pct", 100.0)
    return Outcome(
        pct >= want,
        f"≥ {want:g}% match {params['pattern']}",
        f"{pct:.2f}% ({acc.bad:,} do not)",
        {"examples": acc.examples},
    )


def column_checks(
    checks: list[tuple[str, dict, str]],
    *,
    entity: EntitySpec,
    source: Connector,
    ranges: dict[str, list[KeyRange]],
    helper: Callable[[], Connector] | None = None,
) -> list[Outcome]:
    """Several completeness/format checks ``(kind, params, column)`` of one entity in ONE scan
    of its table: their columns read together, chunk by chunk (the bench's two column checks
    took two scans); ``helper`` opens a second connector to read every other chunk at once
    (column_scan.column_chunks). Read-only; any error raises, for the caller to run them one
    by one and tell which rule it belongs to."""
    from . import column_scan

    accs = [_accumulator(kind, params) for kind, params, _ in checks]
    columns = list(dict.fromkeys(column for _, _, column in checks))
    for part in column_scan.column_chunks(source, entity, columns, ranges, helper=helper):
        for acc, (_, _, column) in zip(accs, checks, strict=True):
            acc.add(part[column])
    return [_scan_outcome(k, p, a) for (k, p, _), a in zip(checks, accs, strict=True)]
