"""SQLite dialect helpers: quoting, JSON-safe values, text rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runs.engine.connectors.base.dialect import Dialect

if TYPE_CHECKING:  # pandas is loaded where a frame is made, not by importing this
    import pandas as pd

# SQLite is the dialect ``Dialect`` describes by default.
OPS = Dialect()
_CHUNK = OPS.chunk


_BLOB = "__mp_blob_hex__"


def q(name: str) -> str:
    """SQLite identifier quoting: wrap in backticks and double embedded ones.

    Not ``"``: SQLite reads a double-quoted name that is no column as a string literal, so a
    renamed column would load its own name as every value. A backtick-quoted unknown name is
    an error ("no such column").
    """
    return "`" + name.replace("`", "``") + "`"


def _qcols(names: Sequence[str]) -> str:
    return ", ".join(q(n) for n in names)


def _jsonable(value: Any) -> Any:
    return {_BLOB: value.hex()} if isinstance(value, bytes) else value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and _BLOB in value:
        return bytes.fromhex(value[_BLOB])
    return value


def _text_rows(rows: pd.DataFrame) -> list[list[str | None]]:
    values = rows.to_numpy(dtype=object, na_value=None)  # TEXT columns hold NA for missing
    return [
        [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in r]
        for r in values
    ]
