"""Frames in and out of a connector: load columns, text frames, Arrow frames, chunks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runs.engine.errors import EngineError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from runs.engine.snapshot import EntitySpec
from .schema import ColumnInfo, TableInfo


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
