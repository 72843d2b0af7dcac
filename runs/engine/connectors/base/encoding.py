"""Characters the target's encoding cannot hold, found per value before anything is written:
a PostgreSQL LATIN1 database refuses '€' in the COPY, which failed the whole batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from .schema import TableInfo

UNENCODABLE = "unencodable"  # the failure category


def unencodable(table: TableInfo, series: pd.Series, where: str) -> dict[int, str]:
    """Position -> message of each value of ``series`` holding a character ``table.codec``
    cannot encode (every such character named once, in order; ``where``: what the values are,
    ending the message in brackets); {} when the table has no codec (any character goes).
    Pure; ASCII values are passed over in Arrow, only the others are encoded one by one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from .validation import arrow_text

    if table.codec is None or series.empty:
        return {}
    arr = arrow_text(series)
    if arr is None:
        values = series.astype(object).to_numpy()
        nulls = series.isna().to_numpy()
        arr = pa.array([None if n else str(v) for v, n in zip(values, nulls, strict=True)])
    ascii_ = pc.fill_null(pc.string_is_ascii(arr), True).to_numpy(zero_copy_only=False)
    positions = np.flatnonzero(~ascii_)
    found: dict[int, str] = {}
    for pos, value in zip(positions.tolist(), arr.take(positions).to_pylist(), strict=True):
        bad = _refused(value, table.codec)
        if bad:
            found[pos] = _message(bad, table.encoding, where)
    return found


def _refused(value: str, codec: str) -> list[str]:
    """The characters of ``value`` the codec cannot encode, each once, in order. Pure."""
    try:
        value.encode(codec)
    except UnicodeEncodeError:
        pass
    else:
        return []
    bad: dict[str, None] = {}
    for ch in value:
        if not ch.isascii() and ch not in bad:
            try:
                ch.encode(codec)
            except UnicodeEncodeError:
                bad[ch] = None
    return list(bad)


def _message(bad: list[str], encoding: str, where: str) -> str:
    shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    noun = "character" if len(bad) == 1 else "characters"
    return (
        f"{noun} {shown}{more} cannot be stored in the target database's encoding "
        f"{encoding} ({where})"
    )
