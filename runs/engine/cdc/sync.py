"""The streaming loop of a sync: read the slot, group committed transactions, apply them,
confirm them to the server, until asked to stop and drained (nothing left before the stop).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runs.engine.cdc.apply import Applier, Counters, GroupResult, Txn
from runs.engine.cdc.decoding import Begin, Change, Commit, parse_message
from runs.engine.cdc.slot import ChangeStream, current_lsn


@dataclass
class Progress:
    """What the operator watches: position, lag (seconds, bytes), totals."""

    applied_lsn: int
    source_lsn: int
    lag_seconds: float
    counters: Counters
    stopping: bool = False
    drained: bool = False

    @property
    def lag_bytes(self) -> int:
        """WAL between the source's current position and what is applied."""
        return max(0, self.source_lsn - self.applied_lsn)


def stream_changes(
    *,
    params: dict[str, Any],
    slot: str,
    start_lsn: int,
    counters: Counters,
    applier: Applier,
    stop_requested: Callable[[], bool],
    on_group: Callable[[GroupResult], None],
    on_progress: Callable[[Progress], None],
    group_size: int = 5_000,
    poll_seconds: float = 0.5,
) -> Progress:
    """Apply the slot's changes from ``start_lsn`` until ``stop_requested()`` and drained: every
    transaction committed before the stop request is applied. Resumable: a restart from the
    target's checkpoint applies each transaction once. Raises EngineError, TransientError."""
    stream = ChangeStream(params, slot, start_lsn)
    applied, pending, current = start_lsn, [], []
    stop_at: int | None = None
    last_progress = 0.0
    try:
        while True:
            messages = stream.poll(limit=group_size, timeout=poll_seconds)
            lag = 0.0
            for lsn, payload in messages:
                msg = parse_message(payload)
                if isinstance(msg, Begin):
                    current = []
                elif isinstance(msg, Change):
                    current.append(msg)
                elif isinstance(msg, Commit):
                    if lsn > applied:
                        pending.append(Txn(end_lsn=lsn, at=msg.at, changes=tuple(current)))
                    current = []
            if pending:
                result = applier.apply(pending, counters)
                counters, applied = result.counters, result.lsn
                if pending[-1].at is not None:
                    lag = max(0.0, (datetime.now(UTC) - pending[-1].at).total_seconds())
                pending = []
                stream.confirm(applied)
                on_group(result)
            elif not messages and not current:
                # idle: nothing decoded is waiting; ask the server how far it has decoded
                applied = max(applied, stream.server_end)
                stream.confirm(applied, reply=True)
            if stop_at is None and stop_requested():
                stop_at = current_lsn(params)
            drained = stop_at is not None and not current and not messages and applied >= stop_at
            now = time.monotonic()
            if drained or now - last_progress >= 1.0 or messages:
                last_progress = now
                progress = Progress(
                    applied_lsn=applied,
                    source_lsn=current_lsn(params),
                    lag_seconds=lag,
                    counters=counters,
                    stopping=stop_at is not None,
                    drained=drained,
                )
                on_progress(progress)
            if drained:
                return progress
    finally:
        stream.close()
