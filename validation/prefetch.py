"""The expected side of a run's report (source rows re-read and put through the run's frozen
rules), computed in a thread of its own WHILE the key diffs run: both mostly wait on the
databases, so the report takes about the longer of the two instead of their sum.

What is computed is exactly what ``expected_aggregate`` computes (same function, same
inputs); only where and when changes. The thread touches no Django model (the caller reads
the post rules and the failed keys first) and uses connectors of its own (a connector is
never shared between threads); it shares the key ranges out to ``THREADS`` threads of its own
(``Reader.parallel``), each with its own connectors, and aggregates in key order."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections

from runs.connections import connection_spec
from runs.engine.connectors import connect
from runs.engine.snapshot import EntitySpec
from runs.models import Run

from . import reconciliation as rec
from .enums import ValidationPhase

T = TypeVar("T")
# post rules whose check compares the target with the expected side
NEEDS_EXPECTED = ("row_count_match", "sum_match", "category_count_match", "sample_compare")


THREADS = 2  # key ranges transformed at once (Arrow kernels and the COPY release the GIL)


@dataclass
class Reader:
    """What the expected side reads with, in its own thread: the run (only its mode is read),
    its frozen snapshot and this thread's source and target connectors; with ``specs``, key
    ranges are transformed by ``THREADS`` threads with connectors of their own (``parallel``)."""

    run: Run
    snapshot: Any
    source: Any
    target: Any
    specs: tuple[tuple[str, dict], tuple[str, dict]] | None = None

    def parallel(self, fn: Callable[[Reader, Any], T], ranges: Iterable[Any]) -> Iterator[T]:
        """``fn(reader, key_range)`` for every range, by ``THREADS`` threads (each with its own
        source and target connectors, closed at the end), results yielded in range order; at
        most ``THREADS + 1`` results held at once (bounded memory). Sequential without specs."""
        if self.specs is None:
            yield from (fn(self, key_range) for key_range in ranges)
            return
        local, opened, lock = threading.local(), [], threading.Lock()

        def work(key_range: Any) -> T:
            reader = getattr(local, "reader", None)
            if reader is None:
                connectors = [connect(*self.specs[0]), connect(*self.specs[1])]
                with lock:
                    opened.extend(connectors)
                reader = local.reader = Reader(self.run, self.snapshot, *connectors)
            return fn(reader, key_range)

        pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="report-expected-part")
        pending: deque[Future] = deque()
        try:
            for key_range in ranges:
                pending.append(pool.submit(work, key_range))
                if len(pending) > THREADS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)
            for connector in opened:
                connector.close()


Job = tuple[EntitySpec, tuple, Any]  # (entity, post needs, failed source keys)


def expected_start(ctx: rec.RunContext, entities: list[EntitySpec]) -> Future | None:
    """Start computing the Expected of every entity whose post rules need it, in a thread;
    None when no rule needs it (the source is then not read at all). Reads the rules and the
    failed keys here, in the caller's thread and transaction."""
    kinds = set(
        ctx.run.plan.validation_rules.filter(phase=ValidationPhase.POST, enabled=True).values_list(
            "entity", "kind"
        )
    )
    jobs: list[Job] = [
        (e, rec._post_needs(ctx.run, e), rec._failed_keys(ctx.run, e))
        for e in entities
        if any((e.name, kind) in kinds for kind in NEEDS_EXPECTED)
    ]
    if not jobs:
        return None
    specs = (connection_spec(ctx.run.plan.source), connection_spec(ctx.run.target))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-expected")
    try:
        return pool.submit(_compute, ctx.run, ctx.snapshot, specs, jobs)
    finally:
        pool.shutdown(wait=False)


def expected_collect(ctx: rec.RunContext) -> None:
    """Wait for ``expected_start``'s thread if no check has yet (``expected_aggregate`` waits
    at the first check that needs it) and put its results, or each entity's error (raised
    later by ``expected_aggregate`` for the rules that need it), into the context's cache."""
    if ctx.pending is not None:
        pending, ctx.pending = ctx.pending, None
        ctx.expected.update(pending.result())


def _compute(
    run: Run, snapshot: Any, specs: tuple[tuple[str, dict], tuple[str, dict]], jobs: list[Job]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    opened: list[Any] = []
    try:
        opened = [connect(*specs[0]), connect(*specs[1])]
        reader = Reader(run, snapshot, *opened, specs=specs)
        for entity, needs, failed in jobs:
            try:
                out[entity.name] = rec._aggregate(reader, entity, needs, failed)
            except Exception as exc:  # noqa: BLE001 - raised for the rules that need it
                out[entity.name] = exc
    except Exception as exc:  # noqa: BLE001 - e.g. cannot connect: each entity gets it
        out = {entity.name: exc for entity, _, _ in jobs}
    finally:
        for connector in opened:
            connector.close()
        connections.close_all()  # this thread's own (none is expected: no model is read here)
    return out
