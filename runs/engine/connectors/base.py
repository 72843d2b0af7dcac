"""Connector contract: Source/Target protocols and the dataclasses they exchange.

Also holds the dialect-neutral pieces both database connectors share: identifier checks
against the introspected schema and ``validate_frame`` (load-stage row validation).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

from runs.engine.errors import EngineError, SchemaError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from runs.engine.snapshot import EntitySpec
    from runs.engine.transform import FieldError

# ``changed_since`` for delta runs: (watermark column, value as text); rows with column > value.
ChangedSince = tuple[str, str]


@dataclass(frozen=True)
class ColumnInfo:
    """One column as introspected; ``cast_type`` is the column's full declared type (with its
    typmod: ``character(3)``, ``numeric(10,2)``), used for every cast of a value to it;
    ``base_type`` the same type without the typmod (type family, canonical text)."""

    name: str
    data_type: str
    max_length: int | None = None
    nullable: bool = True
    primary_key: bool = False
    has_default: bool = False
    generated: bool = False  # GENERATED ALWAYS / identity ALWAYS: never written or restored
    cast_type: str = "text"
    base_type: str = ""

    @property
    def family_type(self) -> str:
        """The type name without typmod (``base_type``, else ``cast_type``)."""
        return self.base_type or self.cast_type


@dataclass(frozen=True)
class TableInfo:
    """One table: columns in ordinal order, primary key, unique column sets, row estimate."""

    name: str
    columns: tuple[ColumnInfo, ...]
    row_estimate: int = 0
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    schema: str | None = None  # PostgreSQL schema holding the table

    def column(self, name: str) -> ColumnInfo:
        """The column called ``name``; raises SchemaError when absent."""
        for col in self.columns:
            if col.name == name:
                return col
        raise SchemaError(f"column {name!r} does not exist in table {self.name!r}")

    def require(self, names: Sequence[str]) -> list[ColumnInfo]:
        """ColumnInfo for each name, in order; raises SchemaError naming the first missing one."""
        return [self.column(n) for n in names]

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in ordinal order."""
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class SchemaInfo:
    """Tables of a connected database, by name."""

    tables: Mapping[str, TableInfo] = field(default_factory=dict)

    def table(self, name: str) -> TableInfo:
        """The table called ``name``; raises SchemaError when absent."""
        try:
            return self.tables[name]
        except KeyError:
            raise SchemaError(f"table {name!r} does not exist") from None


@dataclass(frozen=True)
class KeyRange:
    """A keyset batch: ``lower`` exclusive, ``upper`` inclusive; ``None`` means open."""

    lower: tuple[Any, ...] | None = None
    upper: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for storage on a Batch row."""
        return {"lower": _listify(self.lower), "upper": _listify(self.upper)}

    def comparisons(self, key_cols: Sequence[str]) -> list[tuple[tuple[Any, ...], str]]:
        """The range as (bound, operator) pairs for a WHERE clause: ``(lower, ">")`` and
        ``(upper, "<=")``, open ends left out. Pure; EngineError when a bound's width is not
        the key's."""
        pairs = [(b, op) for b, op in ((self.lower, ">"), (self.upper, "<=")) if b is not None]
        for bound, _ in pairs:
            if len(bound) != len(key_cols):
                raise EngineError(f"key range {bound!r} does not match key {tuple(key_cols)}")
        return pairs

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyRange:
        """Inverse of ``to_dict``."""
        lower, upper = data.get("lower"), data.get("upper")
        return cls(None if lower is None else tuple(lower), None if upper is None else tuple(upper))


def _listify(value: tuple[Any, ...] | None) -> list[Any] | None:
    return None if value is None else list(value)


@dataclass(frozen=True)
class LoadResult:
    """Outcome of one load_batch; ``already_done`` when the batch was committed before."""

    inserted: int = 0
    updated: int = 0
    already_done: bool = False
    result_meta: dict[str, Any] = field(default_factory=dict)
    unchanged: int = 0  # skip_unchanged: rows already identical in the target, not written
    coerced: int = 0  # rows the target stored otherwise than meant: undone, now failures

    @property
    def loaded(self) -> int:
        """Rows the target now holds as transformed: inserted + updated + unchanged."""
        return self.inserted + self.updated + self.unchanged


@dataclass(frozen=True)
class RollbackResult:
    """What rollback_batch undid; all zero when the batch was not (or no longer) recorded."""

    batch_id: str
    deleted: int = 0
    restored: int = 0
    keymap_deleted: int = 0
    ledger_rows_deleted: int = 0
    found: bool = False  # the batch was recorded (and is now undone)


@dataclass(frozen=True)
class TableChecksum:
    """Order-independent digest of a table's rows (text form) plus the row count."""

    rows: int
    digest: str


class Source(Protocol):
    """Read side of a connector."""

    def introspect(self) -> SchemaInfo: ...
    def live_table(self, name: str) -> TableInfo | None: ...
    def count(self, table: str, *, changed_since: ChangedSince | None = None) -> int: ...
    def max_value(self, table: str, column: str) -> str | None: ...
    def key_ranges(
        self,
        table: str,
        key_cols: Sequence[str],
        batch_size: int,
        *,
        changed_since: ChangedSince | None = None,
    ) -> list[KeyRange]: ...
    def extract(
        self,
        table: str,
        columns: Sequence[str],
        key_cols: Sequence[str],
        key_range: KeyRange,
        *,
        changed_since: ChangedSince | None = None,
    ) -> pd.DataFrame: ...
    def fetch_keys(self, table: str, key_cols: Sequence[str], keys: Sequence[str]) -> set[str]: ...
    def duplicate_values(
        self, table: str, column: str, limit: int = 20
    ) -> tuple[int, list[str]]: ...
    def close(self) -> None: ...


class Target(Protocol):
    """Write side of a connector (ledger, load, rollback, checksums)."""

    def introspect(self) -> SchemaInfo: ...
    def live_table(self, name: str) -> TableInfo | None: ...
    def ensure_ledger(self) -> None: ...
    def validate_rows(
        self, table: str, frame: pd.DataFrame
    ) -> dict[Hashable, list[FieldError]]: ...
    def load_batch(
        self,
        *,
        entity: EntitySpec,
        rows: pd.DataFrame,
        source_keys: Sequence[str],
        run_id: str,
        batch_id: str,
        namespace: str,
        result_meta: dict[str, Any],
        skip_unchanged: bool = False,
        describe_coerced: CoercedFailure | None = None,
    ) -> LoadResult: ...
    def batch_result(self, run_id: str, batch_id: str) -> LoadResult | None: ...
    def keymap_lookup(
        self, namespace: str, entity: str, source_keys: Sequence[str]
    ) -> dict[str, str]: ...
    def rollback_batch(self, run_id: str, batch_id: str) -> RollbackResult: ...
    def ledger_batches(self, run_id: str) -> list[str]: ...
    def table_checksum(self, table: str, key_cols: Sequence[str]) -> TableChecksum: ...
    def row_hashes(
        self, table: str, key_col: str, keys: Sequence[str], *, columns: Sequence[str] | None = None
    ) -> dict[str, str]: ...
    def close(self) -> None: ...


class Connector(Source, Target, Protocol):
    """A database connector is both a source and a target."""


class SchemaCache:
    """Connector mixin: tables from the last ``introspect()``, re-read on an unknown name."""

    _schema: SchemaInfo | None = None

    def introspect(self) -> SchemaInfo:  # pragma: no cover - every connector defines it
        raise NotImplementedError

    def live_table(self, name: str) -> TableInfo | None:
        """The table as it is now (the schema re-read and the cache refreshed); None when it
        does not exist. Read-only."""
        return self.introspect().tables.get(name)

    def _table(self, name: str) -> TableInfo:
        if self._schema is None or name not in self._schema.tables:
            self.introspect()
        assert self._schema is not None
        return self._schema.table(name)


class ArrowTextSource(SchemaCache):
    """Connector mixin for sources whose ``extract`` can return Arrow-backed strings."""

    def extract(self, *args: Any, **kwargs: Any) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def extract_text(
        self,
        table: str,
        columns: Sequence[str],
        key_cols: Sequence[str],
        key_range: KeyRange,
        *,
        changed_since: ChangedSince | None = None,
    ) -> pd.DataFrame:
        """``extract`` with Arrow-backed string columns (missing values are pd.NA): what a
        batch feeds the transform, which works on Arrow strings anyway. Read-only."""
        return self.extract(
            table, columns, key_cols, key_range, changed_since=changed_since, arrow=True
        )


# ---------------------------------------------------------------- load-stage validation

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


def validate_frame(table: TableInfo, frame: pd.DataFrame) -> dict[Hashable, list[FieldError]]:
    """Rows the target would refuse (too long, NOT NULL, bad cast) -> every FieldError of the
    row (one per refused column, in column order). Pure.

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
        for category, mask, message in _column_problems(col, series):
            for idx in series.index[mask]:
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
_CANONICAL = {
    "uuid": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
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


def load_columns(
    info: TableInfo, entity: EntitySpec, rows: pd.DataFrame, source_keys: Sequence[str]
) -> tuple[list[ColumnInfo], ColumnInfo, ColumnInfo | None]:
    """Check a batch against its target table: (written columns, target key, external id).
    Pure; raises SchemaError (unknown column) or EngineError (upsert without its external id
    among the rows, keys not aligned with rows)."""
    cols = info.require(list(rows.columns))
    tk = info.column(entity.target_key)
    ext = info.column(entity.external_id) if entity.external_id else None
    if entity.load_mode == "upsert" and (ext is None or ext not in cols):
        raise EngineError(f"entity {entity.name!r}: upsert needs its external_id column")
    if len(source_keys) != len(rows):
        raise EngineError("source_keys must align with rows")
    return cols, tk, ext


def text_frame(columns: Sequence[str], data: Mapping[str, Any]) -> pd.DataFrame:
    """DataFrame of object columns (str/None) in ``columns`` order, however pandas infers."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame(
        {c: np.asarray(data[c], dtype=object) for c in columns}, columns=list(columns), dtype=object
    )


def arrow_frame(table: pa.Table, columns: Sequence[str], *, arrow: bool) -> pd.DataFrame:
    """An Arrow table of string columns (in ``columns`` order) as the engine's text frame:
    Arrow-backed string columns (``arrow``; no Python str per value) or object str/None."""
    import pandas as pd

    if arrow:
        return pd.DataFrame(
            {
                c: pd.Series(pd.arrays.ArrowStringArray(table.column(i)), copy=False)
                for i, c in enumerate(columns)
            },
            columns=list(columns),
        )
    return text_frame(
        columns,
        {c: table.column(i).to_numpy(zero_copy_only=False) for i, c in enumerate(columns)},
    )


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``items`` of at most ``size`` (bound-parameter limits)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ranges_from_bounds(bounds: list[tuple], any_rows: bool) -> list[KeyRange]:
    """Consecutive (lower, upper] ranges; the last upper is open so late rows are not lost."""
    if not any_rows:
        return []
    uppers: list[tuple | None] = list(bounds)
    if not uppers or uppers[-1] is not None:
        uppers.append(None)
    ranges, lower = [], None
    for upper in uppers:
        ranges.append(KeyRange(lower=lower, upper=upper))
        lower = upper
    return ranges
