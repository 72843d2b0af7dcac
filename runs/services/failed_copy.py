"""The failed records' COPY columns and text pieces (runs.services.recording writes them)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import orjson
from django.utils import timezone

from runs.enums import FailedRecordStatus
from runs.models import Batch, Run

_STR, _STR_OR_NONE = frozenset({str}), frozenset({str, type(None)})


def _json_safe(row: dict | None) -> dict:
    """The row with str keys and str-or-None values (the row itself when it already is)."""
    row = row or {}
    # the types seen, by map() in C (a generator over the items took ~2.5 ms a batch)
    if set(map(type, row)) <= _STR and set(map(type, row.values())) <= _STR_OR_NONE:
        return row
    return {str(k): (None if v is None else str(v)) for k, v in row.items()}


def _error_values(f) -> list[dict]:
    """Every error of one RowFailure as JSON-able dicts (values as text)."""
    return [
        {
            "field": e.field,
            "rule": e.rule,
            "value": None if e.value is None else str(e.value),
            "message": e.message,
            "category": e.category,
        }
        for e in f.errors
    ]


# The COPY's columns: first those that differ from record to record, then those the same for
# the whole batch (one constant tail on every line of the COPY's text).
# A failure's own fields, as the engine reports them (also what the ORM path copies).
FAILURE_FIELDS = (
    "source_key",
    "source_row",
    "transformed_row",
    "stage",
    "category",
    "field",
    "rule",
    "message",
    "errors",
)
_COPY_COLUMNS = (
    "uuid",
    *FAILURE_FIELDS,
    "source_hash",
    "run_id",
    "batch_id",
    "entity",
    "status",
    "corrected_values",
    "ignore_reason",
    "created_at",
    "rules_hash",
)


_last_ms = 0  # the timestamp of this process's last _uuid7_hex call


def _uuid7_hex(n: int) -> list[str]:
    """``n`` version-7 UUIDs (RFC 9562: a 48-bit Unix-millisecond timestamp, then 74 random
    bits) as 32 hex digits, ascending, and above every earlier call's in this process (the
    timestamp moves on by at least 1 ms a call): a batch's failed records append to the right
    edge of the unique uuid index instead of landing each on a random leaf page (issue 20, at
    1.66 M records and buffer pressure: ~2,100 → ~300 pages read a batch). The random bits
    come from one read of the OS's random source (uuid.uuid4() reads it once per UUID)."""
    import numpy as np  # pool child only, as the engine

    global _last_ms
    _last_ms = max(time.time_ns() // 1_000_000, _last_ms + 1)
    # the 16 bytes of each, by numpy: the timestamp, then version 7 and variant 0b10 over
    # the random bits (~1 ms of 3,300 against ~2.8 for a formatted string each)
    raw = np.frombuffer(secrets.token_bytes(16 * n), np.uint8).reshape(n, 16).copy()
    raw[:, :6] = np.frombuffer(_last_ms.to_bytes(6, "big"), np.uint8)
    raw[:, 6] = 0x70 | (raw[:, 6] & 0x0F)
    raw[:, 8] = 0x80 | (raw[:, 8] & 0x3F)
    digits = raw.tobytes().hex()
    return sorted([digits[i : i + 32] for i in range(0, 32 * n, 32)])


def _json_bytes(value: object) -> bytes:
    """The JSON as an exact-size bytes object: the one orjson returns keeps the buffer it grew
    (8.6 kB allocated for a 1 kB row), which for a batch's 3,300 failed records held ~50 MB."""
    return memoryview(orjson.dumps(value, default=str)).tobytes()


def _copy_columns(
    *,
    run: Run,
    batch: Batch | None,
    entity: str,
    failures,
    rules_hash: str = "",
    created: str | None = None,
) -> tuple[list[list], list[str | None]]:
    """The COPY values of the failed records in _COPY_COLUMNS' order: one list per column that
    differs per record (text or JSON bytes), then the values every record shares (text or
    None); the same values as _failure_values, without a dict per record."""
    import pyarrow as pa  # pool child only, as the engine

    from runs.engine.failure_block import one_block

    n = len(failures)
    created = created or timezone.now().isoformat()
    heads = [f.errors[0] for f in failures]
    found = one_block(failures)
    if found is not None:  # the rows' JSON by Arrow, from the block (failure_block)
        block, at = found
        taken = pa.array(at, pa.int64())
        rows = [
            block.json(part).take(taken).cast(pa.string()) for part in ("source", "transformed")
        ]
    else:
        rows = [
            [_json_bytes(_json_safe(f.source_row)) for f in failures],
            [_json_bytes(_json_safe(f.transformed_row)) for f in failures],
        ]
    per_record = [
        _uuid7_hex(n),
        [str(f.source_key)[:255] for f in failures],
        *rows,
        [f.stage for f in failures],
        [e.category for e in heads],
        [e.field or "" for e in heads],
        [e.rule or "" for e in heads],
        [e.message for e in heads],
        [_json_bytes(_error_values(f)) for f in failures],
        [getattr(f, "source_hash", "") or "" for f in failures],
    ]
    shared = [
        str(run.pk),
        None if batch is None else str(batch.pk),
        entity,
        FailedRecordStatus.OPEN.value,
        "{}",
        "",
        created,
        rules_hash,
    ]
    return per_record, shared


COPY_CHUNK = 500  # failed records per piece of the COPY's text (built as COPY reads it)


class _Pieces:
    """A file for ``copy_expert``: the concatenation of byte strings made one at a time, as
    it is read (only the piece being read is held)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces, self._piece, self._at = pieces, b"", 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative); b"" at the end."""
        if size is None or size < 0:
            rest = self._piece[self._at :]
            self._piece, self._at = b"", 0
            return rest + b"".join(self._pieces)
        while self._at >= len(self._piece):
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._piece, self._at = piece, 0
        out = self._piece[self._at : self._at + size]
        self._at += len(out)
        return out
