"""What introspection yields and sources are read by: tables, columns, key ranges, watermarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runs.engine.errors import EngineError, SchemaError

if TYPE_CHECKING:
    pass


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
    """One table: columns in ordinal order, primary key, unique column sets, row estimate;
    ``encoding``: the database's encoding as the live server reports it (PostgreSQL's
    ``server_encoding``), ``codec``: the Python codec that encodes exactly the characters it
    can hold, None when there is nothing to check (UTF8, SQL_ASCII, a target without one) or
    no exact codec (then the server's error, for the whole batch)."""

    name: str
    columns: tuple[ColumnInfo, ...]
    row_estimate: int = 0
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    schema: str | None = None  # PostgreSQL schema holding the table
    encoding: str = ""
    codec: str | None = None

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


def ranges_from_bounds(bounds: list[tuple], any_rows: bool) -> list[KeyRange]:
    """Consecutive (lower, upper] ranges; the last upper is open so late rows are not lost.
    ``bounds`` are the keys of rows number n·batch_size short of the last row, so a table of
    N rows gives ceil(N / batch_size) ranges (the launch page's estimate) — no empty last one."""
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
