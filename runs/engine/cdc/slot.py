"""The source side of CDC: prerequisites, the replication slot with its exported snapshot, the
change stream, and the figures an operator watches (lag, WAL the slot retains)."""

from __future__ import annotations

import re
import select
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.errors import EngineError, TransientError

PLUGIN = "test_decoding"
OPTIONS = {"include-timestamp": "1", "skip-empty-xacts": "1", "include-xids": "0"}
_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")
FALLBACK = (
    "Until then, use delta runs instead: the watermark column picks up changed rows and the "
    "entity's delete policy finds deleted ones by key difference."
)


class CdcSetupError(EngineError):
    """The source cannot stream changes; the message says what to change."""


def lsn_int(lsn: str | int | None) -> int:
    """An LSN ('16/B374D848' or an int) as an int; None -> 0. Pure."""
    if lsn is None:
        return 0
    if isinstance(lsn, int):
        return lsn
    hi, _, lo = lsn.partition("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def lsn_text(lsn: int) -> str:
    """The int form of an LSN as PostgreSQL writes it. Pure."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def check_slot_name(name: str) -> str:
    """The slot name when it is one PostgreSQL accepts, else EngineError. Pure."""
    if not _SLOT_NAME.match(name):
        raise EngineError(f"invalid replication slot name {name!r}")
    return name


def cdc_check(params: dict[str, Any]) -> None:
    """Raise CdcSetupError naming what to change when the source cannot stream changes:
    wal_level below logical, a user without REPLICATION, no free replication slot. Read-only."""
    try:
        conn = psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        raise TransientError(f"cannot connect to the source: {exc}") from exc
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT current_setting('wal_level'), current_user, "
                "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), "
                "current_setting('max_replication_slots')::int, "
                "(SELECT count(*) FROM pg_replication_slots)"
            )
            level, user, may_replicate, max_slots, used = cur.fetchone()
    finally:
        conn.close()
    if level != "logical":
        raise CdcSetupError(
            f"The source has wal_level = {level}; change data capture needs logical. Set it "
            "with ALTER SYSTEM SET wal_level = logical (or in postgresql.conf) and restart "
            f"PostgreSQL. {FALLBACK}"
        )
    if not may_replicate:
        raise CdcSetupError(
            f"The source user {user!r} may not stream changes: grant it with ALTER ROLE "
            f'"{user}" REPLICATION (a superuser can). {FALLBACK}'
        )
    if used >= max_slots:
        raise CdcSetupError(
            f"The source has no free replication slot ({used} of max_replication_slots = "
            f"{max_slots} in use): drop an unused slot or raise max_replication_slots. {FALLBACK}"
        )


def slot_info(params: dict[str, Any], slot: str) -> dict[str, Any] | None:
    """The slot's row (database, active, restart/confirmed LSN, retained WAL bytes, current
    WAL LSN) or None when it does not exist. Read-only."""
    conn = psycopg2.connect(**params)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT database, active, restart_lsn::text, confirmed_flush_lsn::text, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, "
                "pg_current_wal_lsn()::text FROM pg_replication_slots WHERE slot_name = %s",
                (slot,),
            )
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    keys = ("database", "active", "restart_lsn", "confirmed_lsn", "retained_bytes", "current_lsn")
    return dict(zip(keys, row, strict=True))


def current_lsn(params: dict[str, Any]) -> int:
    """The source's current WAL insert position. Read-only."""
    conn = psycopg2.connect(**params)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_current_wal_lsn()::text")
            return lsn_int(cur.fetchone()[0])
    finally:
        conn.close()


def slot_drop(params: dict[str, Any], slot: str) -> bool:
    """Drop the slot (waiting for a consumer that is going away). True when it existed.
    Idempotent."""
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            if cur.fetchone() is None:
                return False
            cur.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                "WHERE slot_name = %s AND active_pid IS NOT NULL",
                (slot,),
            )
            cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return True
    finally:
        conn.close()


@dataclass
class ExportedSlot:
    """A new slot and the snapshot it exported: every change after ``lsn`` is in the slot,
    everything before it is in the snapshot (while ``conn`` stays open and idle)."""

    name: str
    lsn: int
    snapshot: str
    conn: Any

    def close(self) -> None:
        """Close the replication connection (the snapshot ends; the slot stays)."""
        if not self.conn.closed:
            self.conn.close()


class SlotWaitTimeout(EngineError):
    """Creating the slot waited too long for transactions open on the source server."""


# Who a slot being created waits for: PostgreSQL makes a logical slot consistent only once every
# transaction holding a transaction id when it started (on ANY database of the server) has
# ended, and any that started meanwhile but was running at its next check; the one it waits on
# now is in pg_blocking_pids. Other users' sessions show NULL xids without pg_read_all_stats, so
# pg_blocking_pids also names those (one at a time).
_BLOCKERS = """
SELECT pid, datname, usename, state, to_char(xact_start, 'YYYY-MM-DD HH24:MI:SS TZ'),
       left(regexp_replace(query, '\\s+', ' ', 'g'), 120)
FROM pg_stat_activity
WHERE pid NOT IN (%(walsender)s, pg_backend_pid())
  AND (pid = ANY(pg_blocking_pids(%(walsender)s))
       OR (backend_xid IS NOT NULL AND xact_start <= %(started)s))
ORDER BY xact_start NULLS LAST, pid
"""


def slot_blockers(cur: Any, walsender: int, started: Any) -> list[dict[str, Any]]:
    """The sessions a slot being created (by backend ``walsender`` since ``started``, server
    time) still waits for: pid, database, user, state, transaction start, query. Read-only."""
    cur.execute(_BLOCKERS, {"walsender": walsender, "started": started})
    keys = ("pid", "database", "user", "state", "since", "query")
    return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


def blockers_text(blockers: list[dict[str, Any]]) -> str:
    """'pid 123 (database d, user u, idle in transaction since …: query)' joined. Pure."""
    parts = []
    for b in blockers:
        facts = [
            f"database {b['database']}" if b.get("database") else "",
            f"user {b['user']}" if b.get("user") else "",
            f"{b['state']} since {b['since']}" if b.get("since") else (b.get("state") or ""),
        ]
        detail = ", ".join(f for f in facts if f)
        query = f": {b['query']}" if b.get("query") else ""
        parts.append(f"pid {b['pid']}" + (f" ({detail}{query})" if detail or query else ""))
    return "; ".join(parts) or "none visible to this user"


def _poll(conn: Any, seconds: float) -> bool:
    """One step of an async connection; True once its command completed."""
    state = conn.poll()
    if state == psycopg2.extensions.POLL_OK:
        return True
    if state == psycopg2.extensions.POLL_READ:
        select.select([conn], [], [], seconds)
    else:
        select.select([], [conn], [], seconds)
    return False


def slot_create(
    params: dict[str, Any],
    name: str,
    *,
    on_wait: Callable[[float, list[dict[str, Any]]], None] | None = None,
    timeout: float = 300.0,
    report_every: float = 1.0,
) -> ExportedSlot:
    """Create logical slot ``name`` exporting its snapshot. While PostgreSQL waits for open
    transactions on the source server, ``on_wait(seconds, blockers)`` is called about every
    ``report_every`` s; past ``timeout`` s the creation is cancelled (no slot is left) and
    SlotWaitTimeout names the blocking pids. Refuses (EngineError) a slot that already exists:
    an existing slot is never reused silently."""
    check_slot_name(name)
    if slot_info(params, name) is not None:
        raise EngineError(
            f"replication slot {name!r} already exists on the source: drop it first "
            f"(SELECT pg_drop_replication_slot('{name}')) if nothing uses it"
        )
    conn = psycopg2.connect(
        **params, connection_factory=psycopg2.extras.LogicalReplicationConnection, async_=True
    )
    watch = psycopg2.connect(**params)
    watch.autocommit = True
    try:
        while not _poll(conn, report_every):
            pass
        walsender = conn.get_backend_pid()
        with watch.cursor() as wcur:
            wcur.execute("SELECT clock_timestamp()")
            started = wcur.fetchone()[0]
            cur = conn.cursor()
            cur.execute(f"CREATE_REPLICATION_SLOT {name} LOGICAL {PLUGIN} EXPORT_SNAPSHOT")
            begun = time.monotonic()
            while not _poll(conn, report_every):
                waited = time.monotonic() - begun
                blockers = slot_blockers(wcur, walsender, started)
                if on_wait is not None:
                    on_wait(waited, blockers)
                if waited >= timeout:
                    _cancel(conn)
                    raise SlotWaitTimeout(
                        f"creating replication slot {name!r} timed out after {int(timeout)} s: "
                        "PostgreSQL creates a logical slot only once every transaction open on "
                        "the source server when it started has ended (on any of its databases),"
                        f" and these are still open: {blockers_text(blockers)}. End them (COMMIT"
                        " or ROLLBACK in that session, or SELECT pg_terminate_backend(<pid>)), "
                        "then start a new sync"
                    )
        _, lsn, snapshot, _ = cur.fetchone()
    except BaseException:
        _cancel(conn)  # a slot still being created is ephemeral: cancelled, none is left
        raise
    finally:
        watch.close()
    return ExportedSlot(name=name, lsn=lsn_int(lsn), snapshot=snapshot, conn=conn)


def _cancel(conn: Any) -> None:
    """Cancel the command running on an async connection and close it (a slot still being
    created is ephemeral: cancelled, it is gone). Idempotent."""
    if conn.closed:
        return
    conn.cancel()
    try:
        while not _poll(conn, 1.0):
            pass
    except psycopg2.Error:
        pass
    conn.close()


def snapshot_export(params: dict[str, Any]) -> ExportedSlot:
    """A read-only REPEATABLE READ transaction on the source, its snapshot exported (for a full
    load resumed after its slot's snapshot died): valid while ``conn`` stays open and idle;
    ``lsn`` is the WAL position it was taken at (the slot's start or later)."""
    conn = psycopg2.connect(**params)
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot(), pg_current_wal_lsn()::text")
            snapshot, lsn = cur.fetchone()
    except BaseException:
        conn.close()
        raise
    return ExportedSlot(name="", lsn=lsn_int(lsn), snapshot=snapshot, conn=conn)


class SnapshotSource(PostgresConnector):
    """A PostgreSQL source reading every transaction in an exported snapshot (the state at the
    slot's LSN). Read-only use."""

    def __init__(self, params: dict[str, Any], snapshot: str) -> None:
        super().__init__(params)
        self._snapshot = snapshot

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with super()._tx() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SET TRANSACTION SNAPSHOT %s", (self._snapshot,))
            yield cur


class ChangeStream:
    """The slot's changes from ``start_lsn``: ``poll`` returns the messages available now as
    (LSN, payload); ``confirm`` tells the server what is applied (it may free WAL)."""

    def __init__(self, params: dict[str, Any], slot: str, start_lsn: int) -> None:
        check_slot_name(slot)
        for attempt in range(20):
            self.conn = psycopg2.connect(
                **params, connection_factory=psycopg2.extras.LogicalReplicationConnection
            )
            self.cur = self.conn.cursor()
            try:
                self.cur.start_replication(
                    slot_name=slot, decode=True, start_lsn=start_lsn, options=OPTIONS
                )
                return
            except psycopg2.errors.ObjectInUse as exc:
                # a killed consumer's walsender may hold the slot for a moment longer
                self.conn.close()
                if attempt == 19:
                    raise EngineError(f"replication slot {slot!r} stays in use: {exc}") from exc
                time.sleep(0.5)

    def poll(self, *, limit: int, timeout: float) -> list[tuple[int, str]]:
        """Up to ``limit`` messages; waits up to ``timeout`` s for the first one."""
        out: list[tuple[int, str]] = []
        while len(out) < limit:
            msg = self.cur.read_message()
            if msg is None:
                if out:
                    break
                ready = select.select([self.conn], [], [], timeout)[0]
                if not ready:
                    break
                continue
            out.append((msg.data_start, msg.payload))
        return out

    @property
    def server_end(self) -> int:
        """The WAL position the server has decoded up to (from its last message/keepalive)."""
        return int(self.cur.wal_end or 0)

    def confirm(self, lsn: int, *, reply: bool = False) -> None:
        """Report ``lsn`` as applied (flushed); ``reply`` asks the server for a keepalive."""
        self.cur.send_feedback(write_lsn=lsn, flush_lsn=lsn, reply=reply)

    def close(self) -> None:
        """Stop streaming (the slot stays, inactive)."""
        if not self.conn.closed:
            self.conn.close()
