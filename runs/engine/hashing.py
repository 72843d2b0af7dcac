"""Row hashes shared by the loader (ledger) and reconciliation, and checksum folding."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

FIELD_SEP = "\x1f"
NULL_MARK = "\x00"
_MASK64 = (1 << 64) - 1


def row_hash(values: Sequence[str | None]) -> str:
    """sha256 hex (first 32) of the values as text joined by 0x1F, NULL as 0x00. Pure."""
    text = FIELD_SEP.join(NULL_MARK if v is None else str(v) for v in values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def row_hashes(rows: Iterable[Sequence[str | None]]) -> list[str]:
    """``row_hash`` of each row, in order."""
    return [row_hash(r) for r in rows]


def arrow_row_hashes(columns: Sequence[pa.Array]) -> list[str]:
    """``row_hash`` of each row of equal-length Arrow string columns (null = NULL). Pure.

    The joining is vectorised; only sha256 runs per row (~15 ms for 16,700 rows of 12
    columns)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    large = pa.large_string()  # pandas' Arrow strings are large_string, COPY's string
    filled = [pc.fill_null(c.cast(large), pa.scalar(NULL_MARK, large)) for c in columns]
    joined = pc.binary_join_element_wise(*filled, pa.scalar(FIELD_SEP, large))
    joined = joined.cast(pa.large_binary())
    sha = hashlib.sha256
    return [sha(b).hexdigest()[:32] for b in joined.to_pylist()]


def fold_digest(total: int) -> str:
    """Render an order-independent sum of signed/unsigned 64-bit row digests as 16 hex chars."""
    return f"{total & _MASK64:016x}"


def text_digest64(text: str) -> int:
    """First 64 bits of md5(text) as an unsigned int (what PostgreSQL sums in SQL)."""
    return int(hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:16], 16)
