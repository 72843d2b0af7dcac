"""One writer per target table: leases held in our database by loads, deltas, re-processing
and rollbacks (dry runs need none).

A lease is *live* while its holder can still write: a load/delta lease while its run has not
ended or one of its batches is still being worked (a run failed by its threshold while other
batches were in flight keeps it until the last of them ends or its claim expires); a
re-process or rollback lease until ``expires_at``, which the holder pushes forward while it
works. Anything else is stale: ``table_lease_acquire`` takes a stale lease over, and
``table_lease_release_expired`` (called by the periodic supervisor) deletes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from mappings.models import System
from migration_planner.lib.errors import ConflictError
from runs.enums import BatchStatus, LeasePurpose, LogLevel, RunStatus
from runs.models import Batch, Run, TableLease

from .logging import run_log

RUN_PURPOSES = (LeasePurpose.LOAD, LeasePurpose.DELTA, LeasePurpose.SYNC)
# A load/delta lease is live while its run is in one of these statuses.
RUN_ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.CANCELLING)


class TableBusy(ConflictError):
    """Another run holds the lease on a table this action would write."""

    def __init__(self, lease: TableLease) -> None:
        super().__init__(table_lease_text(lease), field="target", extra=lease_extra(lease))
        self.lease = lease


def lease_seconds() -> float:
    """How long a re-process/rollback lease lives without being renewed."""
    return float(getattr(settings, "MP_TABLE_LEASE_SECONDS", 300))


def table_lease_text(lease: TableLease) -> str:
    """ "accounts is being written by run #41 (load), started 12:03 by operator"."""
    return lease.description


def lease_extra(lease: TableLease) -> dict:
    """The API body's machine-readable part of a refusal."""
    return {
        "table": lease.table,
        "run": lease.run_id,
        "run_uuid": str(lease.run.uuid),
        "purpose": lease.purpose,
        "holder": lease.holder.get_username() if lease.holder else None,
        "since": lease.acquired_at.isoformat(),
    }


def _batches_in_flight(now) -> Q:
    """Batches a worker still works under a live claim (it may still write the target)."""
    return Q(status=BatchStatus.RUNNING, lease_until__gte=now)


def _stale(lease: TableLease, now) -> bool:
    if lease.expires_at is not None:
        return lease.expires_at < now
    if lease.purpose in RUN_PURPOSES:
        if lease.run.status in RUN_ACTIVE:
            return False
        return not Batch.objects.filter(_batches_in_flight(now), run_id=lease.run_id).exists()
    return False


def _stale_q(now) -> Q:
    in_flight = Batch.objects.filter(_batches_in_flight(now), run_id=OuterRef("run_id"))
    return Q(expires_at__lt=now) | (
        Q(expires_at__isnull=True, purpose__in=RUN_PURPOSES, run__status__in=_ended_statuses())
        & ~Q(Exists(in_flight))
    )


def _ended_statuses() -> list[str]:
    return [s for s in RunStatus.values if s not in RUN_ACTIVE]


def table_lease_acquire(
    *, run: Run, tables: Iterable[str], purpose: str, user, expires: bool | None = None
) -> list[TableLease]:
    """Take the lease on every table for ``run`` (all or none). Transactional; idempotent for
    the same run and purpose except re-processing (renews it); a stale lease is taken over.
    Raises TableBusy naming the holder (run number, purpose, start, user)."""
    now = timezone.now()
    expires = purpose not in RUN_PURPOSES if expires is None else expires
    until = now + timedelta(seconds=lease_seconds()) if expires else None
    held = []
    with transaction.atomic():
        for table in sorted(set(tables)):  # one order everywhere: no deadlock between takers
            held.append(_take(run, table, purpose, user, until, now))
    return held


def _take(run: Run, table: str, purpose: str, user, until, now) -> TableLease:
    for _ in range(3):
        lease = (
            TableLease.objects.select_for_update(of=("self",))
            .select_related("run", "holder")
            .filter(target_id=run.target_id, table=table)
            .order_by()
            .first()
        )
        if lease is not None:
            # A run holds one load/delta/rollback at a time (its status guards that), so the
            # same holder asking again is a retry; two re-process requests are two writers.
            reentrant = purpose != LeasePurpose.REPROCESS
            if reentrant and (lease.run_id, lease.purpose) == (run.pk, purpose):
                TableLease.objects.filter(pk=lease.pk).update(expires_at=until)
                return lease
            if not _stale(lease, now):
                raise TableBusy(lease)
            run_log(lease.run, f"Stale lease on {table} ({lease.purpose}) taken over.")
            lease.delete()
        try:
            with transaction.atomic():
                return TableLease.objects.create(
                    target_id=run.target_id,
                    table=table,
                    run=run,
                    purpose=purpose,
                    holder=user if getattr(user, "pk", None) else None,
                    expires_at=until,
                )
        except IntegrityError:
            continue  # someone took it between our read and insert: read the holder again
    raise TableBusy(
        TableLease.objects.select_related("run", "holder").get(target_id=run.target_id, table=table)
    )


def table_lease_wait(
    *, run: Run, tables: Iterable[str], purpose: str, user, timeout: float, poll: float = 0.5
) -> list[TableLease]:
    """table_lease_acquire, retried while the holder is the same run (its own re-processing
    finishing) for up to ``timeout`` seconds. Raises TableBusy when it never frees."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return table_lease_acquire(run=run, tables=tables, purpose=purpose, user=user)
        except TableBusy as busy:
            if busy.lease.run_id != run.pk or time.monotonic() >= deadline:
                raise
            time.sleep(poll)


def table_lease_renew(*, run: Run, purpose: str) -> int:
    """Push the expiry of the run's expiring leases for ``purpose`` forward; returns how many."""
    until = timezone.now() + timedelta(seconds=lease_seconds())
    return TableLease.objects.filter(run=run, purpose=purpose, expires_at__isnull=False).update(
        expires_at=until
    )


def table_lease_release(*, run: Run, purpose: str | None = None) -> int:
    """Drop the run's leases (of one purpose, or all). Idempotent; returns how many."""
    leases = TableLease.objects.filter(run=run)
    if purpose is not None:
        leases = leases.filter(purpose=purpose)
    return leases.delete()[0]


def table_lease_release_ended(*, run_id: int) -> int:
    """Drop a load/delta run's leases once it has ended and none of its batches is still
    worked under a live claim (else the last batch to end drops them). Idempotent."""
    now = timezone.now()
    run = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
    if run is None or run in RUN_ACTIVE:
        return 0
    if Batch.objects.filter(_batches_in_flight(now), run_id=run_id).exists():
        return 0
    return TableLease.objects.filter(run_id=run_id, purpose__in=RUN_PURPOSES).delete()[0]


def table_lease_release_expired(*, now=None) -> int:
    """Delete stale leases: expired re-process/rollback leases and load/delta leases whose
    run has ended. For the periodic supervisor (Celery beat); idempotent; returns how many."""
    now = now or timezone.now()
    stale = list(TableLease.objects.filter(_stale_q(now)).select_related("run"))
    for lease in stale:
        run_log(
            lease.run,
            f"Lease on {lease.table} ({lease.purpose}) released: its holder stopped renewing it.",
            LogLevel.WARNING,
        )
    return TableLease.objects.filter(pk__in=[lease.pk for lease in stale]).delete()[0]


def table_leases_for(*, target: System, tables: Iterable[str] | None = None) -> list[TableLease]:
    """Live leases on ``target`` (optionally only these tables), with run and holder joined."""
    now = timezone.now()
    leases = TableLease.objects.filter(target=target).select_related("run", "holder")
    if tables is not None:
        leases = leases.filter(table__in=list(tables))
    return [lease for lease in leases if not _stale(lease, now)]
