"""The expected side of a run's report (source rows re-read and put through the run's frozen
rules), computed in a thread of its own WHILE the key diffs run: both mostly wait on the
databases, so the report takes about the longer of the two instead of their sum.

What is computed is exactly what ``expected_aggregate`` computes (same function, same
inputs); only where and when changes. The thread touches no Django model (the caller reads
the post rules first, and the failed keys while the thread lists the key ranges, handing them
over) and uses connectors of its own (a connector is
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
from dataclasses import dataclass, field
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

from . import expected_share
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
    # entity -> the share reserved (and its helper asked) at the report's start
    early: dict[str, Share] = field(default_factory=dict)
    ranges: dict[str, list[Any]] = field(default_factory=dict)  # entity -> key ranges read

    def key_ranges(self, entity: EntitySpec) -> list[Any]:
        """The entity's key ranges of the expected side, read once (kept for ``parts``)."""
        if entity.name not in self.ranges:
            self.ranges[entity.name] = self.source.key_ranges(
                entity.source_table, entity.source_key, rec.chunk_size(self.snapshot, entity)
            )
        return self.ranges[entity.name]

    def parts(self, entity: EntitySpec, failed: KeySet, needs: Needs) -> Iterator[Part]:
        """Every key range's Part of ``entity``'s expected side, in key order. Without specs
        sequential here; else by ``THREADS`` threads of this process with connectors of their
        own (closed at the end) and, with a broker, a helper task on another worker that
        claims ranges from the same counter (``expected_share``): each range computed once,
        the parts merged in range order — the same Expected as one pass. A helper asked at
        the report's start (``early``) gets the ranges under its token; else one is asked now."""
        ranges = self.key_ranges(entity)
        del self.ranges[entity.name]
        if self.specs is None:
            yield from (self.part(r, entity, failed, needs) for r in ranges)
            return
        compute, opened = _per_thread(self, ranges, entity, failed, needs)
        share: Share | LocalShare = LocalShare(len(ranges))
        start = None
        early = self.early.pop(entity.name, None)
        if self.broker and len(ranges) > 1:
            job = _job(self.run.pk, entity, ranges, failed, needs)
            with contextlib.suppress(redis.RedisError):  # no broker: every range computed here
                share = early.publish(job) if early else Share.create(client(self.broker), job)
        if early is not None and share is not early:
            with contextlib.suppress(redis.RedisError):  # its helper then does nothing
                early.end()
        if isinstance(share, Share) and share is not early:
            token = share.token

            def start() -> None:
                _ask_helper(token)

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
    """The helper's side of a shared expected side (task ``validation.expected_part``): read
    the run's failed keys, wait for the leader's key ranges (``JOB_WAIT`` at most), claim them
    from the leader's counter and send each range's Part, until none is left. Does nothing
    when the leader has ended (or the failed keys it read differ from the leader's). Returns
    how many ranges it computed; never writes to a database."""
    from .reconciliation.expected import SampleSpec

    conn = client(settings.CELERY_BROKER_URL)
    head = Share.head(conn, token)
    if head is None:
        return 0
    run = Run.objects.filter(pk=head["run"]).first()
    entity = next((e for e in run_entities(run) if e.name == head["entity"]), None) if run else None
    if run is None or entity is None:
        return 0
    # read while the leader reads its own and lists the key ranges (asked at its start)
    failed = rec._failed_keys(run, entity)
    specs = (connection_spec(run.plan.source), connection_spec(run.target))
    reader = Reader(run, run_snapshot(run), None, None, specs=specs)
    opened_share = Share.open(conn, token, wait=expected_share.JOB_WAIT)
    if opened_share is None:
        return 0
    share, job = opened_share
    if (job["run"], job["entity"]) != (run.pk, entity.name):
        return 0
    if failed.digest() != job["failed"]:  # the run's failed records changed meanwhile
        return 0
    needs = (
        set(job["sums"]),
        set(job["cats"]),
        [SampleSpec(pct=p, n=n, seed=seed) for p, n, seed in job["samples"]],
    )
    ranges = [KeyRange.from_dict(r) for r in job["ranges"]]
    compute, opened = _per_thread(reader, ranges, entity, failed, needs)
    try:
        return helper_run(share, compute, threads=THREADS)
    finally:
        for connector in opened:
            connector.close()


Job = tuple[EntitySpec, tuple, "Future[KeySet]"]  # (entity, post needs, failed source keys)


def expected_start(ctx: rec.RunContext, entities: list[EntitySpec]) -> Future | None:
    """Start computing the Expected of every entity whose post rules need it, in a thread;
    None when no rule needs it (the source is then not read at all). Reads the rules here;
    with a broker, asks for a helper for the first such entity at once (``_reserve``); then
    reads the failed keys here, in the caller's thread and transaction, while the thread
    connects and lists the key ranges. Raises what reading the failed keys raised."""
    kinds = set(
        ctx.run.plan.validation_rules.filter(phase=ValidationPhase.POST, enabled=True).values_list(
            "entity", "kind"
        )
    )
    jobs: list[Job] = [
        (e, rec._post_needs(ctx.run, e), Future())
        for e in entities
        if any((e.name, kind) in kinds for kind in NEEDS_EXPECTED)
    ]
    if not jobs:
        return None
    broker = _broker()
    early = _reserve(broker, ctx.run.pk, jobs[0][0]) if broker else None
    specs = (connection_spec(ctx.run.plan.source), connection_spec(ctx.run.target))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-expected")
    try:
        pending = pool.submit(
            _compute, ctx.run, ctx.snapshot, specs, jobs, ctx.watch, broker, early
        )
    finally:
        pool.shutdown(wait=False)
    for entity, _, keys in jobs:
        try:
            keys.set_result(rec._failed_keys(ctx.run, entity))
        except BaseException as exc:
            for _, _, rest in jobs:  # the thread ends at the first it needs
                if not rest.done():
                    rest.set_exception(exc)
            raise
    return pending


def _reserve(broker: str, run_id: int, entity: EntitySpec) -> dict[str, Share]:
    """A share reserved for ``entity`` and a helper asked for it now, before the failed keys
    and key ranges are read ({} when the broker does not answer: one is asked later)."""
    try:
        share = Share.reserve(client(broker), {"run": run_id, "entity": entity.name})
    except redis.RedisError:
        return {}
    _ask_helper(share.token)
    return {entity.name: share}


def _ask_helper(token: str) -> None:
    """Queue the helper task for a share (a failure to queue leaves every range to the leader)."""
    from .tasks import expected_part_task

    try:
        expected_part_task.apply_async((token,), expires=TTL)
    except Exception:  # noqa: BLE001 - no helper then: every range computed here
        logger.warning("report helper not queued", exc_info=True)


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
    broker: str | None = None,
    early: dict[str, Share] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    opened: list[Any] = []
    early = dict(early or {})
    try:
        opened = [connect(*specs[0]), connect(*specs[1])]
        if watch is not None:
            for connector in opened:
                watch.watch(connector)
        reader = Reader(run, snapshot, *opened, specs=specs, broker=broker, watch=watch)
        reader.early = early  # taken by ``parts``; what is left is ended below
        for entity, needs, keys in jobs:
            try:
                reader.key_ranges(entity)  # while the caller still reads the failed keys
                out[entity.name] = rec._aggregate(reader, entity, needs, keys.result())
            except Exception as exc:  # noqa: BLE001 - raised for the rules that need it
                out[entity.name] = exc
    except Exception as exc:  # noqa: BLE001 - e.g. cannot connect: each entity gets it
        out = {entity.name: exc for entity, _, _ in jobs}
    finally:
        for connector in opened:
            connector.close()
        for share in early.values():  # reserved, never published: its helper does nothing
            with contextlib.suppress(redis.RedisError):
                share.end()
        connections.close_all()  # this thread's own (none is expected: no model is read here)
    return out
