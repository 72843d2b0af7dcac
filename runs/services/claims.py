"""Claims with a lease, kept alive by a heartbeat, and patience with a database that restarts.

A worker that takes work (a batch, a preparing run, a rollback, a sync run) claims it with a
conditional update that sets a lease; a heartbeat thread renews the lease while the work goes
on; the supervisor (``runs.services.supervise``) hands work whose lease expired to another
worker. Errors of a database that is restarting or unreachable (ours or a system's) are
transient: the bookkeeping around them is retried for at most a lease, then the lease rules
take over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from runs.engine.errors import TransientError, is_unavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")


def lease_delta() -> timedelta:
    """One lease (``MP_BATCH_LEASE_SECONDS``): batches, preparing runs, rollbacks, syncs."""
    return timedelta(seconds=settings.MP_BATCH_LEASE_SECONDS)


def worker_id() -> str:
    """``host:pid`` of this process (what the run page shows as the claim's holder)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ClaimHeartbeat(threading.Thread):
    """Keeps a claim's lease alive while the work goes on: every third of a lease it sets
    ``lease_until`` on ``claim`` (a queryset that matches only while the claim holds). A claim
    the supervisor took back matches nothing and is not renewed. Database errors (an outage)
    are survived: the lease then simply runs out."""

    def __init__(self, claim) -> None:
        super().__init__(daemon=True)
        self.claim, self.stop = claim, threading.Event()

    def run(self) -> None:
        interval = max(settings.MP_BATCH_LEASE_SECONDS / 3, 0.5)
        try:
            while not self.stop.wait(interval):
                try:
                    self.claim.update(lease_until=timezone.now() + lease_delta())
                except DatabaseError:
                    connection.close()
        finally:
            connection.close()


def db_retrying(fn: Callable[[], T], *, what: str, within: float | None = None) -> T:
    """``fn()``, tried again with back-off (0.25 s, doubling, at most 2 s) while it fails
    because a database is restarting or unreachable, for at most ``within`` seconds (default:
    one lease); then raises TransientError. Other errors propagate at once. ``fn`` must be
    safe to repeat (a conditional update, an atomic block)."""
    limit = settings.MP_BATCH_LEASE_SECONDS if within is None else within
    deadline, delay = time.monotonic() + limit, 0.25
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            connection.close()  # a broken connection is reopened by the next query
            if time.monotonic() + delay > deadline:
                raise TransientError(f"{what}: {_text(exc)}") from exc
            logger.warning("%s: database unavailable (%s); retrying", what, _text(exc))
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _text(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or exc.__class__.__name__
