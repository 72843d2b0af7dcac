"""Load-stage validation, the same for every target: rows a table would refuse, by column."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from runs.engine.transform import FieldError
from .encoding import UNENCODABLE, unencodable
from .schema import ColumnInfo, TableInfo

# ASCII digits and blanks only: Python's \d and \s also match other scripts' digits ('١٢') and
# NBSP, which PostgreSQL refuses (the whole batch failed) and SQLite stores as text (found by
# the oracle test).
_SP = r"[ \t\n\r\f\v]*"  # the blanks PostgreSQL skips around a number (not NBSP & co.)


_INT_RE = _SP + r"[+-]?[0-9]+" + _SP


_NUM_RE = (
    _SP
    + r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    + _SP
    + "|"
    + _SP
    + r"(?i:[+-]?(?:nan|infinity|inf))"
    + _SP
)


_UUID_RE = r"\s*\{?[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\}?\s*"


_BOOL_WORDS = frozenset({"t", "true", "y", "yes", "on", "1", "f", "false", "n", "no", "off", "0"})


_INT_BOUNDS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


def type_family(type_name: str) -> str:
    """Family of a PostgreSQL/SQLite type: integer numeric boolean date timestamp uuid text."""
    t = type_name.lower()
    if t in _INT_BOUNDS or t in ("int", "int2", "int4", "int8"):
        return "integer"
    if "int" in t and "interval" not in t and "point" not in t:
        return "integer"
    if any(w in t for w in ("numeric", "decimal", "real", "double", "float")):
        return "numeric"
    if t.startswith("bool"):
        return "boolean"
    if "timestamp" in t or t == "datetime":
        return "timestamp"
    if t == "date":
        return "date"
    if t == "uuid":
        return "uuid"
    return "text"


def numeric_limit(declared: str) -> tuple[int, int] | None:
    """(precision, scale) of a declared ``numeric(p, s)`` / ``decimal(p)`` type, else None."""
    m = re.search(r"(?:numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", declared.lower())
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def max_length_of(declared: str) -> int | None:
    """Length limit of a declared ``varchar(n)`` / ``char(n)`` type, else None."""
    m = re.search(r"char[^(]*\((\d+)\)", declared.lower())
    return int(m.group(1)) if m else None


def validate_frame(
    table: TableInfo,
    frame: pd.DataFrame,
    source_keys: pd.Series | None = None,
    key_field: str = "source_key",
) -> dict[Hashable, list[FieldError]]:
    """Rows the target would refuse (too long, NOT NULL, bad cast, a character the database's
    encoding cannot hold) -> every FieldError of the row (one per refused column, in column
    order; then one for ``source_keys``, by the frame's labels, named ``key_field``: the
    target's ledger keeps them, in its encoding). Pure.

    Raises SchemaError for a frame column the table does not have. Vectorised per column.
    """
    import pandas as pd

    from runs.engine.transform import FieldError  # transform imports connectors lazily too

    # pandas/numpy are imported where used, so importing the connector types (as the web app
    # and the Celery parent process do) does not load them (~100 MB per process).

    found: dict[Hashable, list[FieldError]] = {}
    for col in table.require(list(frame.columns)):
        series = frame[col.name]
        seen: set[Hashable] = set()  # one error per column of a row (the first problem)
        refused = [
            (category, idx, message)
            for category, mask, message in _column_problems(col, series)
            for idx in series.index[mask]
        ]
        # the whole COPY is converted to the database's encoding: every column's values count
        refused += [
            (UNENCODABLE, series.index[pos], message)
            for pos, message in unencodable(table, series, f"{table.name}.{col.name}").items()
        ]
        for category, idx, message in refused:
            if idx in seen:
                continue
            seen.add(idx)
            value = series.at[idx]
            if value is pd.NA:  # a missing value in a TEXT column: None, as elsewhere
                value = None
            found.setdefault(idx, []).append(
                FieldError(
                    field=col.name, rule="load", value=value, message=message, category=category
                )
            )
    if source_keys is not None:
        where = f"source key {key_field}, kept in the target's ledger"
        for pos, message in unencodable(table, source_keys, where).items():
            idx = source_keys.index[pos]
            found.setdefault(idx, []).append(
                FieldError(
                    field=key_field,
                    rule="load",
                    value=source_keys.iat[pos],
                    message=message,
                    category=UNENCODABLE,
                )
            )
    return found


def _text_length_problems(
    col: ColumnInfo, series: pd.Series
) -> list[tuple[str, np.ndarray, str]] | None:
    """Fast path for a text column of str/None values: NOT NULL and length checks in Arrow
    (~1 ms instead of ~20 ms per 50,000 values); None when the values are not all text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = arrow_text(series)
    if arr is None:
        try:
            arr = pa.array(series.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            return None
    problems = []
    if not col.nullable and not col.has_default:
        isnull = arr.is_null().to_numpy(zero_copy_only=False)
        problems.append(("required_missing", isnull, f"{col.name} is NOT NULL in the target"))
    if col.max_length is not None and arr.null_count < len(arr):
        too_long = pc.fill_null(pc.greater(pc.utf8_length(arr), col.max_length), False)
        kind, message = bad_message(col)
        problems.append((kind, too_long.to_numpy(zero_copy_only=False), message))
    return problems


def arrow_text(series: pd.Series) -> pa.Array | None:
    """The column's own Arrow string array when it is the engine's TEXT (no copy), else None."""
    import pandas as pd
    import pyarrow as pa

    if not isinstance(series.array, pd.arrays.ArrowStringArray):
        return None
    arr = pa.array(series.array)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


# Canonical spellings every target accepts, checked in Arrow (RE2) before the per-value path:
# a subset of what _bad_values accepts, so a value matching one is good without looking again.
# A date every target and pandas' ISO 8601 parser take: a year of 1678-2261 (inside every
# parser's range), a month and a day it has (February 29 takes the per-value path).
_YEAR = "(?:16(?:7[89]|[89][0-9])|(?:1[7-9]|2[01])[0-9][0-9]|22[0-5][0-9]|226[01])"
_MONTH_DAY = (
    "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_DAY = f"{_YEAR}-{_MONTH_DAY}"
_CANONICAL = {
    "uuid": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    # what the rules' dates write (parse_date): 16,700 values took ~4 ms through pandas
    "timestamp": f"^{_DAY} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$",
    "date": f"^{_DAY}$",
}


def _column_problems(col: ColumnInfo, series: pd.Series) -> list[tuple[str, np.ndarray, str]]:
    import numpy as np
    import pyarrow.compute as pc

    family = type_family(col.family_type)
    if col.family_type.lower() in ("json", "jsonb"):
        return _json_problems(col, series)
    if family == "text":
        fast = _text_length_problems(col, series)
        if fast is not None:
            return fast
    isnull = series.isna().to_numpy()
    problems = []
    if not col.nullable and not col.has_default:
        problems.append(("required_missing", isnull, f"{col.name} is NOT NULL in the target"))
    todo = ~isnull
    arr = arrow_text(series) if family in _CANONICAL else None
    if arr is not None:
        canonical = pc.match_substring_regex(arr, _CANONICAL[family]).fill_null(False)
        todo &= ~canonical.to_numpy(zero_copy_only=False)
    text = series[todo].astype(object).map(str)
    if text.empty:
        return problems
    bad = _bad_values(col, text)
    if bad is not None:
        mask = np.zeros(len(series), dtype=bool)
        mask[np.flatnonzero(todo)[bad]] = True
        kind, message = bad_message(col)
        problems.append((kind, mask, message))
    return problems


def _json_refused(text: str) -> bool:
    """Whether a json/jsonb column refuses the text: strict JSON only (no NaN/Infinity, which
    Python's json reads and PostgreSQL does not). Pure."""

    def constant(name: str) -> None:
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=constant)
    except ValueError:
        return True
    return False


def _json_problems(col: ColumnInfo, series: pd.Series) -> list[tuple[str, np.ndarray, str]]:
    """NOT NULL and JSON syntax of a json/jsonb column (found by the oracle test: invalid JSON
    failed the whole batch on PostgreSQL and was stored as text on SQLite)."""
    import numpy as np

    isnull = series.isna().to_numpy()
    problems = []
    if not col.nullable and not col.has_default:
        problems.append(("required_missing", isnull, f"{col.name} is NOT NULL in the target"))
    values = series.astype(object).to_numpy()
    bad = np.fromiter(
        (not null and _json_refused(str(v)) for v, null in zip(values, isnull, strict=True)),
        dtype=bool,
        count=len(values),
    )
    problems.append(("type_cast", bad, f"not valid JSON ({col.name} {col.data_type})"))
    return problems


def _decimals(text: str) -> int:
    """Significant decimals of a number's text (trailing zeros do not count); 0 if not one."""
    try:
        exponent = Decimal(text.strip()).normalize().as_tuple().exponent
    except (InvalidOperation, ValueError):
        return 0
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def bad_message(col: ColumnInfo) -> tuple[str, str]:
    """Failure category and message for a value that does not fit ``col``."""
    if type_family(col.family_type) == "text":
        return "too_long", f"longer than {col.max_length} characters ({col.name} {col.data_type})"
    limit = numeric_limit(col.data_type)
    if limit is not None:
        return "type_cast", (
            f"not a number that fits {col.data_type} ({col.name}): at most "
            f"{limit[0] - limit[1]} digits before the point and {limit[1]} after it"
        )
    return "type_cast", f"does not cast to {col.data_type} ({col.name})"


def _bad_values(col: ColumnInfo, text: pd.Series) -> np.ndarray | None:
    import numpy as np
    import pandas as pd

    family = type_family(col.family_type)
    s = text.astype(object)
    if family == "text":
        if col.max_length is None:
            return None
        return (s.str.len() > col.max_length).to_numpy(dtype=bool)
    if family == "integer":
        ok = s.str.fullmatch(_INT_RE).to_numpy(dtype=bool)
        bound = _INT_BOUNDS.get(col.family_type.lower(), 2**63)
        nums = [int(v) if good else 0 for v, good in zip(s, ok, strict=True)]
        in_range = np.array([-bound <= n < bound for n in nums], dtype=bool)
        return ~(ok & in_range)
    if family == "numeric":
        bad = ~s.str.fullmatch(_NUM_RE).to_numpy(dtype=bool)
        limit = numeric_limit(col.data_type)
        if limit is not None:
            scale = limit[1]
            values = pd.to_numeric(s.where(~bad, None), errors="coerce").round(scale)
            bad |= (values.abs() >= 10.0 ** (limit[0] - scale)).to_numpy(dtype=bool)
            # more significant decimals than the scale: the target would round them away
            bad |= np.array([not b and _decimals(v) > scale for v, b in zip(s, bad, strict=True)])
        return bad
    if family == "boolean":
        return ~s.str.strip().str.lower().isin(_BOOL_WORDS).to_numpy(dtype=bool)
    if family == "uuid":
        return ~s.str.fullmatch(_UUID_RE).to_numpy(dtype=bool)
    parsed = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy(dtype=bool).copy()
    if family == "date":
        bad |= ~s.str.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*").to_numpy(dtype=bool)
    return bad
