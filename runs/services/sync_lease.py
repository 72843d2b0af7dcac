"""Who drives a sync run: one process at a time, under a lease the supervisor can see.

A sync run is one long task. Whoever drives it (the ``runs.cdc_sync`` task or ``manage.py
cdc_sync``) claims the run's lease (``Run.lease_until`` + ``Run.lease_holder``), renews it with
a heartbeat and gives it back when it stops. A second driver is refused while the lease is
live (two consumers of one slot would fight over it). A driver that dies stops renewing: the
supervisor then shows the run as stalled and queues the task again, which resumes streaming
from the target's checkpoint (``runs.services.cdc``).
"""

from __future__ import annotations

import contextlib
import secrets
import time

from django.db import transaction
from django.utils import timezone

from runs.engine.errors import TransientError
from runs.enums import RunMode, RunStatus
from runs.models import Run

from .claims import ClaimHeartbeat, db_retrying, lease_delta, worker_id

DRIVABLE = (RunStatus.QUEUED, RunStatus.RUNNING)


class SyncBusy(Exception):
    """Another live process drives the sync; its lease ends in ``seconds``."""

    def __init__(self, holder: str, seconds: float) -> None:
        super().__init__(f"the sync is driven by {holder or 'another worker'}")
        self.holder, self.seconds = holder, seconds


@transaction.atomic
def sync_claim(*, run_id: int) -> str | None:
    """Take the sync run's lease for this process; returns the claim's token, or None when
    the run is no sync to drive (ended, not a sync). Transactional (row lock); raises SyncBusy
    while another claim's lease is live."""
    run = Run.objects.select_for_update().get(pk=run_id)
    if run.mode != RunMode.SYNC or run.status not in DRIVABLE:
        return None
    now = timezone.now()
    if run.lease_until is not None and run.lease_until >= now:
        raise SyncBusy(run.lease_holder, (run.lease_until - now).total_seconds())
    token = f"{worker_id()}:{secrets.token_hex(4)}"
    Run.objects.filter(pk=run_id).update(lease_until=now + lease_delta(), lease_holder=token)
    return token


def _release(run_id: int, token: str, *, ended: bool) -> None:
    """Give the lease back: cleared when the run ended, else expired at once (the retry, or
    the supervisor, claims it again)."""
    Run.objects.filter(pk=run_id, lease_holder=token).update(
        lease_until=None if ended else timezone.now(), lease_holder=""
    )


def sync_drive(*, run_id: int, wait: bool = False) -> Run:
    """Drive a sync run (``runs.services.cdc.sync_run``) under its lease. ``wait``: wait for a
    live lease to end first (a foreground restart after a crash), else raise SyncBusy.
    Idempotent: an ended run is returned unchanged. Raises TransientError for a retry."""
    from .cdc import sync_run

    while True:
        try:
            token = db_retrying(lambda: sync_claim(run_id=run_id), what="sync claim")
            break
        except SyncBusy as busy:
            if not wait:
                raise
            time.sleep(min(max(busy.seconds, 0.2), 2.0))
    if token is None:
        return Run.objects.get(pk=run_id)
    keeper = ClaimHeartbeat(Run.objects.filter(pk=run_id, lease_holder=token))
    keeper.start()
    ended = False
    try:
        run = sync_run(run_id=run_id)
        ended = run.status not in DRIVABLE
        return run
    finally:
        keeper.stop.set()
        # if our database stays down, the lease runs out by itself
        with contextlib.suppress(TransientError):
            db_retrying(lambda: _release(run_id, token, ended=ended), what="sync release")
