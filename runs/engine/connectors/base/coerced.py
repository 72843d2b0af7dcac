"""Rows a target stored otherwise than meant (``coerced_by_target``): detail and failures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


COERCED = "coerced_by_target"


# (row position in the batch, [(column, intended canonical text, stored canonical text)])
Coercion = tuple[int, list[tuple[str, "str | None", "str | None"]]]


CoercedFailure = Callable[[int, list[tuple[str, "str | None", "str | None"]]], dict[str, Any]]


def coerced_errors(diffs: Sequence[tuple[str, str | None, str | None]]) -> list[dict[str, Any]]:
    """The failure errors (result_meta form) of one row the target changed: one per column,
    category ``coerced_by_target``, the intended value as the value. Pure."""
    return [
        {
            "field": column,
            "rule": "read_back",
            "value": intended,
            "message": (
                "the target no longer holds the row it was sent"
                if column == "*"
                else f"the target stored {stored!r} in {column}, not the intended {intended!r}"
            ),
            "category": COERCED,
        }
        for column, intended, stored in diffs
    ]


def with_coerced(
    result_meta: dict[str, Any],
    coerced: Sequence[Coercion],
    rows: pd.DataFrame,
    source_keys: Sequence[str],
    describe: CoercedFailure | None = None,
) -> dict[str, Any]:
    """``result_meta`` with the coerced rows moved from loaded to failed and recorded as
    failures (``describe`` builds each one; by default from the transformed row). Pure."""
    if not coerced:
        return result_meta
    failures = []
    for position, diffs in coerced:
        if describe is not None:
            failures.append(describe(position, diffs))
            continue
        values = rows.iloc[position].astype(object)
        failures.append(
            {
                "source_key": str(source_keys[position]),
                "source_row": {},
                "transformed_row": {
                    str(k): None if _isna(v) else str(v) for k, v in values.items()
                },
                "stage": "load",
                "errors": coerced_errors(diffs),
            }
        )
    meta = dict(result_meta)
    meta["loaded"] = int(meta.get("loaded", 0)) - len(coerced)
    meta["failed"] = int(meta.get("failed", 0)) + len(coerced)
    meta["failures"] = [*meta.get("failures", []), *failures]
    return meta


def _isna(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def compare_detail(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Differences from rows of (key, row present?, intended 1, stored 1, intended 2, ...)
    in canonical text: one dict (key, column, intended, stored) per column that differs.
    Pure."""
    out: list[dict[str, Any]] = []
    for r in rows:
        if not r[1]:
            out.append({"key": str(r[0]), "column": "*", "intended": "row", "stored": None})
            continue
        values = r[2:]
        out += [
            {"key": str(r[0]), "column": c, "intended": values[2 * i], "stored": values[2 * i + 1]}
            for i, c in enumerate(columns)
            if values[2 * i] != values[2 * i + 1]
        ]
    return out
