"""The expected side of a run's report (source rows re-read and put through the run's frozen
rules), computed in a thread of its own WHILE the key diffs run: both mostly wait on the
databases, so the report takes about the longer of the two instead of their sum.

What is computed is exactly what ``expected_aggregate`` computes (same function, same
inputs); only where and when changes. The thread touches no Django model (the caller reads
the post rules and the failed keys first) and uses connectors of its own (a connector is
never shared between threads); it shares the key ranges out to ``THREADS`` threads of its own,
each with its own connectors, and — when Celery runs on workers — to a helper task on another
worker, a second process and so a second core (``Reader.parts``, ``expected_share``); each
range's Part (counts, sums, sample rows) is merged in key order."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connections

from runs.connections import connection_spec
from runs.engine.connectors import connect
from runs.engine.connectors.base.schema import KeyRange
from runs.engine.snapshot import EntitySpec
from runs.models import Run
from runs.services.state import run_entities, run_snapshot

from . import reconciliation as rec
from .enums import ValidationPhase
from .expected_share import TTL, LocalShare, Needs, Share, client, helper_run, shared_parts
from .reconciliation.expected import Part
from .reconciliation.keyset import KeySet
from .report_cancel import ReportWatch

logger = logging.getLogger(__name__)
# post rules whose check compares the target with the expected side
NEEDS_EXPECTED = ("row_count_match", "sum_match", "category_count_match", "sample_compare")


THREADS = 2  # key ranges transformed at once (Arrow kernels and the COPY release the GIL)
LEADER_THREADS = 1  # the report's own, when a helper shares the ranges (Reader.parts)


@dataclass
class Reader:
    """What the expected side reads with, in its own thread: the run (only its mode is read),
    its frozen snapshot and this thread's source and target connectors; with ``specs``, key
    ranges are transformed by ``THREADS`` threads with connectors of their own and, with a
    broker, by a helper on another worker too (``parts``)."""

    run: Run
    snapshot: Any
    source: Any
    target: Any
    specs: tuple[tuple[str, dict], tuple[str, dict]] | None = None
    broker: str | None = None  # Redis URL of the share with a helper (None: this process only)
    watch: ReportWatch | None = None  # stops the ranges once the run is rolling back

    def parts(self, entity: EntitySpec, failed: KeySet, needs: Needs) -> Iterator[Part]:
        """Every key range's Part of ``entity``'s expected side, in key order. Without specs
        sequential here; else by ``THREADS`` threads of this process with connectors of their
        own (closed at the end) and, with a broker, a helper task on another worker that
        claims ranges from the same counter (``expected_share``): each range computed once,
        the parts merged in range order — the same Expected as one pass."""
        ranges = self.source.key_ranges(
            entity.source_table, entity.source_key, rec.chunk_size(self.snapshot, entity)
        )
        if self.specs is None:
            yield from (self.part(r, entity, failed, needs) for r in ranges)
            return
        compute, opened = _per_thread(self, ranges, entity, failed, needs)
        share: Share | LocalShare = LocalShare(len(ranges))
        start = None
        if self.broker and len(ranges) > 1:
            job = _job(self.run.pk, entity, ranges, failed, needs)
            with contextlib.suppress(redis.RedisError):  # no broker: every range computed here
                share = Share.create(client(self.broker), job)
        if isinstance(share, Share):
            token = share.token

            def start() -> None:
                from .tasks import expected_part_task

                try:
                    expected_part_task.apply_async((token,), expires=TTL)
                except Exception:  # noqa: BLE001 - no helper then: every range computed here
                    logger.warning("report helper not queued", exc_info=True)

        try:
            # with a helper on another worker, one thread here: the helper's process takes the
            # ranges this one leaves (one counter), and the leader's worker holds one 20,000-row
            # range in flight instead of two (its tree was 364 of the 400 MB line at 10 M)
            threads = LEADER_THREADS if isinstance(share, Share) else THREADS
            yield from shared_parts(share, compute, threads=threads, hold=HOLD, start_helper=start)
        finally:
            for connector in opened:
                connector.close()

    def part(self, key_range: Any, entity: EntitySpec, failed: KeySet, needs: Needs) -> Part:
        """One key range's Part, read with this reader's connectors (a checkpoint first)."""
        if self.watch is not None:
            self.watch.check("expected ranges")
        return rec._range_part(self, key_range, entity=entity, failed=failed, needs=needs)


HOLD = 4  # Parts of this process's threads that may wait for their turn in the merge


def _per_thread(
    reader: Reader, ranges: list[Any], entity: EntitySpec, failed: KeySet, needs: Needs
) -> tuple[Callable[[int], Part], list[Any]]:
    """``compute(index)``: range ``index``'s Part, with connectors of the calling thread's
    own (opened at its first range; all listed in the second value, for closing)."""
    local, opened, lock = threading.local(), [], threading.Lock()
    assert reader.specs is not None

    def compute(index: int) -> Part:
        own = getattr(local, "reader", None)
        if own is None:
            connectors = [connect(*reader.specs[0]), connect(*reader.specs[1])]
            with lock:
                opened.extend(connectors)
            if reader.watch is not None:
                for connector in connectors:
                    reader.watch.watch(connector)
            own = local.reader = Reader(
                reader.run, reader.snapshot, *connectors, watch=reader.watch
            )
        return own.part(ranges[index], entity, failed, needs)

    return compute, opened


def _job(run_id: int, entity: EntitySpec, ranges: list[Any], failed: KeySet, needs: Needs) -> dict:
    sums, cats, samples = needs
    return {
        "run": run_id,
        "entity": entity.name,
        "ranges": [r.to_dict() for r in ranges],
        "failed": failed.digest(),
        "sums": sorted(sums),
        "cats": sorted(cats),
        "samples": [[s.pct, s.n, s.seed] for s in samples],
    }


def expected_help(token: str) -> int:
    """The helper's side of a shared expected side (task ``validation.expected_part``): claim
    the entity's key ranges from the leader's counter and send each range's Part, until none
    is left. Does nothing when the leader has ended (or the failed keys it read differ from
    the leader's). Returns how many ranges it computed; never writes to a database."""
    from .reconciliation.expected import SampleSpec

    opened_share = Share.open(client(settings.CELERY_BROKER_URL), token)
    if opened_share is None:
        return 0
    share, job = opened_share
    run = Run.objects.filter(pk=job["run"]).first()
    entity = next((e for e in run_entities(run) if e.name == job["entity"]), None) if run else None
    if run is None or entity is None:
        return 0
    failed = rec._failed_keys(run, entity)
    if failed.digest() != job["failed"]:  # the run's failed records changed meanwhile
        return 0
    needs = (
        set(job["sums"]),
        set(job["cats"]),
        [SampleSpec(pct=p, n=n, seed=seed) for p, n, seed in job["samples"]],
    )
    ranges = [KeyRange.from_dict(r) for r in job["ranges"]]
    specs = (connection_spec(run.plan.source), connection_spec(run.target))
    reader = Reader(run, run_snapshot(run), None, None, specs=specs)
    compute, opened = _per_thread(reader, ranges, entity, failed, needs)
    try:
        return helper_run(share, compute, threads=THREADS)
    finally:
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
        return pool.submit(_compute, ctx.run, ctx.snapshot, specs, jobs, ctx.watch)
    finally:
        pool.shutdown(wait=False)


def expected_collect(ctx: rec.RunContext) -> None:
    """Wait for ``expected_start``'s thread if no check has yet (``expected_aggregate`` waits
    at the first check that needs it) and put its results, or each entity's error (raised
    later by ``expected_aggregate`` for the rules that need it), into the context's cache."""
    if ctx.pending is not None:
        pending, ctx.pending = ctx.pending, None
        ctx.expected.update(pending.result())


def _broker() -> str | None:
    """The Redis URL a helper shares the expected side through; None when tasks run in this
    process (eager) or no helper is wanted (``MP_REPORT_HELPER``)."""
    from celery import current_app

    if current_app.conf.task_always_eager or not settings.MP_REPORT_HELPER:
        return None
    return settings.CELERY_BROKER_URL


def _compute(
    run: Run,
    snapshot: Any,
    specs: tuple[tuple[str, dict], tuple[str, dict]],
    jobs: list[Job],
    watch: ReportWatch | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    opened: list[Any] = []
    try:
        opened = [connect(*specs[0]), connect(*specs[1])]
        if watch is not None:
            for connector in opened:
                watch.watch(connector)
        reader = Reader(run, snapshot, *opened, specs=specs, broker=_broker(), watch=watch)
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
