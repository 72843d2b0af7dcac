"""The report's set of a run's failed source keys, held compactly and probed chunk by chunk
(validation.reconciliation.expected leaves those rows out of the expected side)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa


class KeySet:
    """An exact set of text keys held compactly: each key's UTF-8 bytes plus 0x01 (so no
    stored value ends in the NUL padding of numpy's fixed-width bytes, and the encoding stays
    one-to-one) in one sorted array; membership by binary search. ~10 bytes per short key
    where an object Index took a Python str and a hash slot (~100 bytes): 1.66 M failed keys of
    a 10 M run. Pure; built once, read by several threads."""

    _BLOCK = 65_536

    @staticmethod
    def _encode(key: str) -> bytes:
        return key.encode("utf-8", "surrogatepass") + b"\x01"

    def __init__(self, keys: Iterable[str]) -> None:
        parts: list[np.ndarray] = []
        block: list[bytes] = []
        for key in keys:
            block.append(self._encode(key))
            if len(block) == self._BLOCK:
                parts.append(np.array(block, dtype=bytes))
                block = []
        if block:
            parts.append(np.array(block, dtype=bytes))
        self._width = max((p.dtype.itemsize for p in parts), default=1)
        dtype = np.dtype(f"S{self._width}")
        # one copy, sorted in place: a 10 M run's 1.66 M keys were held three times at once
        self._keys = np.concatenate(parts, dtype=dtype) if parts else np.empty(0, dtype=dtype)
        del parts
        self._keys.sort()

    def __len__(self) -> int:
        return len(self._keys)

    def digest(self) -> str:
        """A SHA-256 of the set (two sets with the same keys have the same digest). Pure."""
        digest = hashlib.sha256(str(self._width).encode())
        digest.update(self._keys.view(np.uint8))  # no copy of the keys
        return digest.hexdigest()

    def contains(self, keys: Iterable[str]) -> np.ndarray:
        """A boolean array: whether each of ``keys`` is in the set (exact byte equality).
        Pure. Encoded in one Arrow pass (no Python call per key); key by key only when
        Arrow refuses a key (a lone surrogate) — both give the same bytes."""
        wanted, fits = self._arrow_encoded(keys)
        if wanted is None:
            wanted, fits = self._python_encoded(keys)
        out = np.zeros(len(fits), dtype=bool)
        if not len(wanted) or not len(self._keys):
            return out
        at = np.minimum(np.searchsorted(self._keys, wanted), len(self._keys) - 1)
        out[np.flatnonzero(fits)] = self._keys[at] == wanted
        return out

    def _python_encoded(self, keys: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        encoded = [self._encode(k) for k in keys]
        # a key longer than every stored one is not in the set (a cast would cut it)
        fits = np.fromiter((len(e) <= self._width for e in encoded), bool, len(encoded))
        wanted = np.array(
            [e for e, f in zip(encoded, fits, strict=True) if f], dtype=self._keys.dtype
        )
        return wanted, fits

    def _arrow_encoded(self, keys: Iterable[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """``_encode`` of every key that fits, as the set's fixed-width bytes, and which fit;
        (None, _) when Arrow cannot take the keys as strings without nulls."""
        try:
            arr = pa.array(keys if isinstance(keys, pd.Series | pd.Index) else list(keys))
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            arr = arr.cast(pa.large_string())
        except (pa.ArrowException, TypeError, ValueError, UnicodeError):
            return None, np.zeros(0, dtype=bool)
        if arr.null_count:
            return None, np.zeros(0, dtype=bool)
        n = len(arr)
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
        data = arr.buffers()[2]
        data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        lengths = np.diff(offsets)  # UTF-8 bytes, without the 0x01 that ends each key
        fits = lengths + 1 <= self._width
        length, start = lengths[fits], offsets[:-1][fits]
        block = np.zeros((len(length), self._width), dtype=np.uint8)
        row = np.repeat(np.arange(len(length)), length)
        col = np.arange(len(row)) - np.repeat(np.cumsum(length) - length, length)
        block[row, col] = data[np.repeat(start, length) + col]
        block[np.arange(len(length)), length] = 1
        return block.view(self._keys.dtype).reshape(-1), fits
