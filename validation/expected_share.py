"""The report's expected side shared with a helper on another worker (a second process, so a
second core: the side is the rules' transform, GIL-bound in one process).

The report's process (the leader) reserves a token at the report's start (``Share.reserve``:
the run and the entity) and asks for the helper (task ``validation.expected_part``, run by
whichever worker is free) at once, so the helper reads its own copy of the failed keys while the
leader reads its; the leader then lists the entity's key ranges once and puts them, with what
its post rules need, under the token (``Share.publish``); its own threads and the helper's
claim ranges one at a time from one counter (``INCR``), so each range is transformed once.
The helper sends each range's ``Part`` (row count, sums, category counts, the sample's rows
of that range: ~5 % of them) back through Redis; the leader merges every Part in key-range
order, as one pass would.
Nothing is decided by the helper: a Part it failed to send (it died, errored, or never
started) is computed by the leader itself — the same function on the same range, so the
Expected is the same whoever computed what. Plain Python and Redis; no Django model."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import redis

from validation.reconciliation.expected import Part, SampleSpec
from validation.reconciliation.sample import _from_arrow, _to_arrow

PREFIX = "mp:expected:"
TTL = 3600  # seconds every key lives at most (a leader that died leaves nothing for long)
HEARTBEAT = 20  # seconds a helper is taken for alive after its last sign
JOB_WAIT = 120  # seconds a helper asked early waits for the leader's key ranges at most
POLL = 0.02  # seconds between the leader's looks for a helper's Part
FAILED = b"!"  # a helper's answer for a range it could not compute (the leader computes it)

Needs = tuple[set[str], set[str], list[SampleSpec]]


def client(url: str) -> redis.Redis:
    """A Redis client for the share (short timeouts: a broker that does not answer fails
    the expected side, never hangs the report)."""
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


@dataclass
class Share:
    """One entity's key ranges under one token: the claim counter, the helper's Parts, its
    heartbeat. Every method is one or two Redis commands; safe from several threads."""

    redis: redis.Redis
    token: str
    count: int = 0

    def _key(self, name: str) -> str:
        return f"{PREFIX}{self.token}:{name}"

    @classmethod
    def reserve(cls, conn: redis.Redis, head: dict[str, Any]) -> Share:
        """A new share (a fresh token) whose ranges are not known yet: ``head`` names the run
        and the entity, so a helper asked now can read the failed keys meanwhile."""
        share = cls(conn, uuid.uuid4().hex)
        conn.set(share._key("head"), json.dumps(head), ex=TTL)
        return share

    def publish(self, job: dict[str, Any]) -> Share:
        """The ranges of a reserved share, claimable from now on (``job``: run id, entity,
        ranges as dicts, the failed keys' digest, needs)."""
        self.count = len(job["ranges"])
        self.redis.set(self._key("next"), 0, ex=TTL)
        self.redis.set(self._key("job"), json.dumps(job), ex=TTL)
        return self

    @classmethod
    def create(cls, conn: redis.Redis, job: dict[str, Any]) -> Share:
        """A new share (a fresh token) for ``job``, published at once."""
        return cls.reserve(conn, {"run": job["run"], "entity": job["entity"]}).publish(job)

    @classmethod
    def head(cls, conn: redis.Redis, token: str) -> dict[str, Any] | None:
        """The run and entity of a share; None when the leader has ended it (or never was)."""
        raw = conn.get(f"{PREFIX}{token}:head")
        return None if raw is None else json.loads(raw)

    @classmethod
    def open(
        cls, conn: redis.Redis, token: str, wait: float = 0.0
    ) -> tuple[Share, dict[str, Any]] | None:
        """The helper's view of a share, waiting up to ``wait`` seconds for the leader to
        publish its ranges; None when the leader has ended it (or never was), or did not
        publish in time."""
        deadline = time.monotonic() + wait
        while True:
            raw = conn.get(f"{PREFIX}{token}:job")
            if raw is not None:
                job = json.loads(raw)
                return cls(conn, token, len(job["ranges"])), job
            if time.monotonic() >= deadline or not conn.exists(f"{PREFIX}{token}:head"):
                return None
            time.sleep(POLL)

    def claim(self) -> int | None:
        """The next unclaimed range's index, or None when every range is claimed."""
        index = int(self.redis.incr(self._key("next"))) - 1
        return index if index < self.count else None

    def claimed(self) -> int:
        """How many ranges have been claimed so far (by anyone)."""
        return min(int(self.redis.get(self._key("next")) or self.count), self.count)

    def beat(self) -> None:
        """The helper is alive (for HEARTBEAT seconds)."""
        self.redis.set(self._key("alive"), 1, ex=HEARTBEAT)

    def alive(self) -> bool:
        """Whether a helper gave a sign within HEARTBEAT seconds."""
        return bool(self.redis.exists(self._key("alive")))

    def send(self, index: int, blob: bytes) -> None:
        """The helper's answer for range ``index`` (a Part's bytes, or FAILED)."""
        key = self._key(f"part:{index}")
        self.redis.pipeline().rpush(key, blob).expire(key, TTL).execute()

    def take(self, index: int) -> bytes | None:
        """The helper's answer for range ``index`` if it has come (removed from Redis)."""
        return self.redis.lpop(self._key(f"part:{index}"))

    def end(self) -> None:
        """No range is claimed any more; the job and the counter go (idempotent). Parts a
        helper sends later expire with TTL."""
        self.redis.set(self._key("next"), self.count + 1_000_000, ex=60)
        self.redis.delete(self._key("head"), self._key("job"), self._key("alive"))


class LocalShare:
    """A Share kept in this process (no broker, no helper): the ranges are claimed by this
    process's threads only."""

    def __init__(self, count: int) -> None:
        self.count, self._next, self._lock = count, 0, threading.Lock()

    def claim(self) -> int | None:
        with self._lock:
            index, self._next = self._next, self._next + 1
        return index if index < self.count else None

    def claimed(self) -> int:
        with self._lock:
            return min(self._next, self.count)

    def take(self, index: int) -> bytes | None:
        return None

    def alive(self) -> bool:
        return False

    def end(self) -> None:
        with self._lock:
            self._next = self.count


def shared_parts(
    share: Share | LocalShare,
    compute: Callable[[int], Part],
    *,
    threads: int,
    hold: int,
    start_helper: Callable[[], None] | None = None,
) -> Iterator[Part]:
    """Every range's Part, in range order: ``threads`` threads of this process claim ranges
    from ``share`` and ``compute`` them (``compute(index)`` builds its own connectors per
    thread); a range the helper claimed is taken from Redis, or computed here when the
    helper sent FAILED or is no longer alive. At most ``hold`` Parts of this process wait
    for their turn (bounded memory). Ends the share when done or abandoned."""
    done: dict[int, Part | BaseException] = {}
    mine: set[int] = set()
    cond = threading.Condition()
    slots = threading.Semaphore(hold)
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            slots.acquire()
            if stop.is_set():
                return
            with cond:  # claimed and listed as ours at once (the merge tells ours by it)
                try:
                    index = share.claim()
                except BaseException as exc:  # noqa: BLE001 - the merge raises it
                    done[-1] = exc
                    cond.notify_all()
                    return
                if index is not None:
                    mine.add(index)
            if index is None:
                slots.release()
                return
            try:
                part: Part | BaseException = compute(index)
            except BaseException as exc:  # noqa: BLE001 - raised in range order below
                part = exc
            with cond:
                done[index] = part
                cond.notify_all()

    workers = [
        threading.Thread(target=work, name=f"report-expected-part-{i}", daemon=True)
        for i in range(threads)
    ]
    try:
        if start_helper is not None:
            start_helper()
        for worker in workers:
            worker.start()
        for index in range(share.count):
            part = _next(share, index, done, mine, cond, compute)
            if index in mine:
                slots.release()
            if isinstance(part, BaseException):
                raise part
            yield part
    finally:
        stop.set()
        for _ in workers:
            slots.release()
        for worker in workers:
            if worker.is_alive():
                worker.join()
        share.end()


def _next(
    share: Share | LocalShare,
    index: int,
    done: dict[int, Part | BaseException],
    mine: set[int],
    cond: threading.Condition,
    compute: Callable[[int], Part],
) -> Part | BaseException:
    while True:
        with cond:
            if -1 in done:
                return done.pop(-1)
            if index in done:
                return done.pop(index)
            # ours, or nobody's yet (our threads will claim it): wait for them
            if index in mine or share.claimed() <= index:
                cond.wait(POLL)
                continue
        blob = share.take(index)
        if blob is not None and blob != FAILED:
            return part_of(blob)
        if blob == FAILED or not share.alive():
            # the helper could not, or is gone: the same range computed here (an error it
            # met is met again here, and raised for the rules that need it)
            try:
                return compute(index)
            except BaseException as exc:  # noqa: BLE001 - raised by the caller in order
                return exc
        with cond:
            cond.wait(POLL)


def helper_run(share: Share, compute: Callable[[int], Part], *, threads: int) -> int:
    """The helper's side: ``threads`` threads claim ranges and send each Part (FAILED for a
    range that raised) until none is left. Returns how many ranges it computed."""
    computed: list[int] = []

    def work() -> None:
        while True:
            share.beat()
            index = share.claim()
            if index is None:
                return
            try:
                blob = part_bytes(compute(index))
            except Exception:  # noqa: BLE001 - the leader computes the range itself
                blob = FAILED
            share.send(index, blob)
            computed.append(index)

    workers = [threading.Thread(target=work, name=f"expected-helper-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(computed)


def part_bytes(part: Part) -> bytes:
    """A Part as bytes: a JSON head (counts, sums as text) and each frame as an Arrow IPC
    stream, the keys as exact bytes and ``mp_hash`` as uint64 (``part_of`` inverts it)."""
    head: dict[str, Any] = {
        "rows": part.rows,
        "sums": {c: str(v) for c, v in part.sums.items()},
        # pairs, not an object: a NULL category (None) is no JSON key
        "counts": {c: list(v.items()) for c, v in part.counts.items()},
        "frames": [],
    }
    blobs: list[bytes] = []
    for kind, frames in (("smallest", part.smallest), ("picked", part.picked)):
        for key, frame in frames.items():
            hashes = frame["mp_hash"].to_numpy() if "mp_hash" in frame.columns else None
            table = _to_arrow(frame.drop(columns=["mp_hash"], errors="ignore"))
            if hashes is not None:
                table = table.append_column("mp_hash", pa.array(hashes, type=pa.uint64()))
            sink = pa.BufferOutputStream()
            with ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            blob = sink.getvalue().to_pybytes()
            head["frames"].append([kind, list(key), len(blob)])
            blobs.append(blob)
    text = json.dumps(head).encode()
    return len(text).to_bytes(4, "big") + text + b"".join(blobs)


def part_of(blob: bytes) -> Part:
    """The Part ``part_bytes`` wrote."""
    size = int.from_bytes(blob[:4], "big")
    head = json.loads(blob[4 : 4 + size])
    part = Part(
        rows=head["rows"],
        sums={c: Decimal(v) for c, v in head["sums"].items()},
        counts={c: Counter(dict(v)) for c, v in head["counts"].items()},
    )
    at = 4 + size
    for kind, key, length in head["frames"]:
        table = ipc.open_stream(io.BytesIO(blob[at : at + length])).read_all()
        at += length
        hashes = None
        if "mp_hash" in table.schema.names:
            hashes = table.column("mp_hash").to_numpy()
            table = table.drop_columns(["mp_hash"])
        frame = _from_arrow(table)
        if hashes is not None:
            frame = frame.assign(mp_hash=pd.Series(hashes, index=frame.index, dtype="uint64"))
        getattr(part, kind)[tuple(key)] = frame
    return part
