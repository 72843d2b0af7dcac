"""Comparing two sides by range checksums (pure Python; see the package docstring):
positions, digests, the side protocol, the in-memory side and ``diff_sides``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

MASK64 = (1 << 64) - 1
Ranges = Sequence[tuple[int, int]]
Stats = list[tuple[int, int]]  # per range: (row count, digest sum mod 2**64)


def key_position(key: str, integer: bool) -> int:
    """A row's position in the key space: the integer key, else md5(key)[:15] as an int. Pure."""
    if integer:
        return int(key)
    return int(hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:15], 16)


def hash_digest(row_hash: str) -> int:
    """The 64-bit digest of a row hash (its first 16 hex digits) summed per range by the
    in-memory sides; ``PgSide`` sums its own (``hashtextextended``), so a comparison is
    between two sides of one kind. Pure."""
    return int(row_hash[:16], 16)


class RangeSide(Protocol):
    """One side of a comparison (see the module docstring)."""

    def bounds(self) -> tuple[int, int] | None: ...
    def stats(self, ranges: Ranges) -> Stats: ...
    def hashes(self, ranges: Ranges) -> dict[str, str]: ...


@dataclass
class MemorySide:
    """A side held in memory: key text -> row hash."""

    rows: Mapping[str, str]
    integer_keys: bool = True
    _pos: dict[str, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._pos = {k: key_position(k, self.integer_keys) for k in self.rows}

    def bounds(self) -> tuple[int, int] | None:
        """(min, max) position, None when empty."""
        return (min(self._pos.values()), max(self._pos.values())) if self._pos else None

    def stats(self, ranges: Ranges) -> Stats:
        """(count, digest sum) per range."""
        out = []
        for lo, hi in ranges:
            inside = [k for k, p in self._pos.items() if lo <= p < hi]
            out.append((len(inside), sum(hash_digest(self.rows[k]) for k in inside) & MASK64))
        return out

    def hashes(self, ranges: Ranges) -> dict[str, str]:
        """Key -> hash of the rows inside any of the ranges."""
        return {
            k: self.rows[k] for k, p in self._pos.items() if any(lo <= p < hi for lo, hi in ranges)
        }


@dataclass
class KeyDiff:
    """Keys only in the expected side (missing), only in the actual side (extra), or differing."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    expected_rows: int = 0
    actual_rows: int = 0
    levels: int = 0
    ranges_checked: int = 0
    rows_fetched: int = 0
    marked: int = 0  # rows the run marked (delete policy "mark"), expected marked and matching

    @property
    def clean(self) -> bool:
        """True when both sides hold exactly the same rows."""
        return not (self.missing or self.extra or self.changed)


def split(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` cut into at most ``parts`` contiguous non-empty ranges. Pure."""
    width = hi - lo
    cuts = sorted({lo + width * i // parts for i in range(parts)} | {hi})
    return list(zip(cuts, cuts[1:], strict=False))


def diff_sides(
    expected: RangeSide,
    actual: RangeSide,
    *,
    factor: int = 32,
    leaf_rows: int = 2_000,
    max_levels: int = 12,
) -> KeyDiff:
    """Compare two sides by range checksums, narrowing only where they differ. Read-only.

    Each level asks each side once for the stats of every range still in doubt; ranges with at
    most ``leaf_rows`` rows on both sides (or a width of 1) are settled by comparing row hashes.
    """
    diff = KeyDiff()
    bounds = [b for b in (expected.bounds(), actual.bounds()) if b is not None]
    if not bounds:
        return diff
    doubtful = [(min(b[0] for b in bounds), max(b[1] for b in bounds) + 1)]
    leaves: list[tuple[int, int]] = []
    while doubtful and diff.levels < max_levels:
        diff.levels += 1
        ranges = [r for lo, hi in doubtful for r in split(lo, hi, factor)]
        left, right = expected.stats(ranges), actual.stats(ranges)
        diff.ranges_checked += len(ranges)
        if diff.levels == 1:
            diff.expected_rows = sum(s[0] for s in left)
            diff.actual_rows = sum(s[0] for s in right)
        doubtful = []
        for rng, a, b in zip(ranges, left, right, strict=True):
            if a == b:
                continue
            small = max(a[0], b[0]) <= leaf_rows or rng[1] - rng[0] <= 1
            (leaves if small else doubtful).append(rng)
    leaves += doubtful
    if leaves:
        _settle(expected.hashes(leaves), actual.hashes(leaves), diff)
    return diff


def _settle(want: dict[str, str], have: dict[str, str], diff: KeyDiff) -> None:
    diff.rows_fetched = len(want) + len(have)
    diff.missing = sorted(set(want) - set(have), key=_natural)
    diff.extra = sorted(set(have) - set(want), key=_natural)
    diff.changed = sorted(
        (k for k in want.keys() & have.keys() if want[k] != have[k]), key=_natural
    )


def _natural(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)
