"""A rollback's verdict, recorded in one app-database transaction with the run, its batches,
ledger entries and failed records marked rolled back (``rollback_record``), and the same
transaction begun early (``EarlyRecord``): on PostgreSQL it supersedes the run's failed
records while the target is still being undone — at 10 M rows the supersede of 1.66 M
records (48.7 s) and the target's DELETEs (57.7 s) ran one after the other."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from runs.engine.errors import is_unavailable
from runs.enums import (
    BatchStatus,
    FailedRecordStatus,
    LeasePurpose,
    LogLevel,
    RollbackStatus,
    RunStatus,
)
from runs.models import Batch, FailedRecord, LedgerEntry, Rollback, Run

from . import hooks
from .carry_refs import carried_batches_roll_back
from .leases import table_lease_release
from .logging import run_log
from .queue_actions import failed_records_unsupersede


class _Superseded(Exception):
    """Another attempt holds the rollback now: this attempt's final transaction is undone."""


class _Abandoned(Exception):
    """The undo did not reach a verdict: the early transaction is rolled back."""


def failed_records_supersede_own(run: Run) -> int:
    """The run's own failed records, but the ignored and the superseded, as superseded; how
    many. Inside the rollback's final transaction (the tally triggers move their counts)."""
    return (
        FailedRecord.objects.filter(run=run)
        .exclude(status__in=[FailedRecordStatus.IGNORED, FailedRecordStatus.SUPERSEDED])
        .update(status=FailedRecordStatus.SUPERSEDED)
    )


def rollback_record(
    rollback: Rollback,
    run: Run,
    mine,
    after: dict,
    differences: dict,
    then: Callable[[], None] | None = None,
) -> bool:
    """The verdict, in one transaction; True when this claim recorded it. The bulk updates
    (a 10 M run: 1.66 M failed records) go first; the claim's row is locked only at the end, so
    its heartbeat keeps renewing the lease meanwhile. ``then`` runs last in the transaction when
    the verdict is *verified* (a stack's next rollback is requested in it). Not idempotent by
    itself: ``mine`` (the claim's queryset) refuses a second verdict."""
    if not mine.exists():
        return False  # another attempt holds the rollback now: it records the verdict
    try:
        with transaction.atomic():
            superseded = failed_records_supersede_own(run)
            _record_in_transaction(rollback, run, mine, after, differences, superseded, then)
            transaction.on_commit(lambda: hooks.after_run(Run.objects.get(pk=run.pk)))
    except _Superseded:
        return False
    return True


def _record_in_transaction(
    rollback: Rollback,
    run: Run,
    mine,
    after: dict,
    differences: dict,
    superseded: int,
    then: Callable[[], None] | None = None,
) -> None:
    """The rest of the final transaction, after the supersede; raises _Superseded when the
    claim was handed on (the caller's transaction is then rolled back). ``then``: see
    rollback_record."""
    _undo_run_records(run)
    if not mine.update(
        status=RollbackStatus.MISMATCH if differences else RollbackStatus.VERIFIED,
        finished_at=timezone.now(),
        lease_until=None,
        checksums_after=after,
        error=f"Checksums differ from before the run: {differences}" if differences else "",
    ):
        raise _Superseded  # it records the verdict; our updates are rolled back
    table_lease_release(run=run, purpose=LeasePurpose.ROLLBACK)
    _log_verdict(rollback, run, differences, superseded)
    if then is not None and not differences:
        then()


def _undo_run_records(run: Run) -> None:
    """The run, its batches and ledger entries as rolled back, and the failed records of earlier
    runs it carried or superseded open again (inside the final transaction, after its own
    records were superseded)."""
    Run.objects.filter(pk=run.pk).update(status=RunStatus.ROLLED_BACK)
    Batch.objects.filter(run=run, status=BatchStatus.DONE).update(status=BatchStatus.ROLLED_BACK)
    LedgerEntry.objects.filter(batch__run=run).update(rolled_back_at=timezone.now())
    # its references first (they decide which run the re-opened originals answer to): the
    # earlier run's records this run carried are that run's open failures again
    carried_batches_roll_back(run=run)
    FailedRecord.objects.filter(
        status=FailedRecordStatus.CARRIED,
        pk__in=FailedRecord.objects.filter(run=run, carried_from__isnull=False).values(
            "carried_from"
        ),
    ).update(status=FailedRecordStatus.OPEN)
    failed_records_unsupersede(run=run)  # and those this run superseded (queue_actions)


def _log_verdict(rollback: Rollback, run: Run, differences: dict, superseded: int) -> None:
    verdict = (
        "target checksums equal the pre-run values"
        if not differences
        else f"checksums differ on {', '.join(differences)}"
    )
    done = Rollback.objects.get(pk=rollback.pk)
    run_log(
        run,
        f"Rolled back {done.batches_undone} batches: {done.rows_deleted:,} rows deleted, "
        f"{done.rows_restored:,} restored; {verdict}. {superseded:,} failed record(s) "
        "superseded.",
        LogLevel.INFO if not differences else LogLevel.ERROR,
    )


class EarlyRecord(threading.Thread):
    """``rollback_record``'s transaction, begun before the undo in a thread (and database
    session) of its own: it supersedes the run's failed records at once, then waits for
    ``decide`` (the verdict, recorded in the same transaction) or ``abandon`` (rolled back:
    nothing the run's records show has changed). The records stay locked meanwhile, as they
    were during the supersede before. ``begin`` returns None where the app database is not
    PostgreSQL or the caller is inside a transaction (the records would be invisible to, or
    locked against, another session): the caller records sequentially."""

    def __init__(self, rollback: Rollback, run: Run, mine) -> None:
        super().__init__(daemon=True, name=f"rollback-{rollback.pk}-record")
        self.rollback, self.run_obj, self.mine = rollback, run, mine
        self._verdict: queue.Queue[tuple | None] = queue.Queue(maxsize=1)
        self.recorded: bool | None = None
        self.error: BaseException | None = None
        self.decided = False  # the verdict reached the transaction (errors after it are its)
        self._backend: int | None = None  # the session's server process (to cancel its wait)

    @classmethod
    def begin(cls, rollback: Rollback, run: Run, mine) -> EarlyRecord | None:
        """Start the early transaction where it can run beside the caller's session."""
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            return None
        early = cls(rollback, run, mine)
        early.start()
        return early

    def run(self) -> None:
        try:
            with transaction.atomic():
                connection.ensure_connection()
                self._backend = connection.connection.info.backend_pid
                superseded = failed_records_supersede_own(self.run_obj)
                verdict = self._verdict.get()
                if verdict is None:
                    raise _Abandoned
                self.decided = True
                if not self.mine.exists():
                    raise _Superseded
                after, differences, then = verdict
                _record_in_transaction(
                    self.rollback, self.run_obj, self.mine, after, differences, superseded, then
                )
            self.recorded = True
        except (_Abandoned, _Superseded):
            self.recorded = False
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread (decide)
            self.error = exc
        finally:
            connection.close()

    def abandon(self) -> None:
        """Roll the early transaction back (no verdict); waits for the thread, cancelling the
        supersede if it is still at work or waiting on a record another session holds (the
        rollback must not wait for it). Idempotent."""
        with contextlib.suppress(queue.Full):  # a second call: the first one's None waits
            self._verdict.put_nowait(None)
        self.join(timeout=1)
        if self.is_alive() and self._backend is not None:
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_cancel_backend(%s)", [self._backend])
        self.join()

    def decide(
        self,
        after: dict,
        differences: dict,
        fallback: Callable[[], bool],
        then: Callable[[], None] | None = None,
    ) -> bool:
        """Record the verdict in the early transaction (``then``: see rollback_record); True
        when this claim recorded it. When the early transaction failed before the verdict
        reached it, or the database was unavailable, ``fallback`` (the sequential record)
        decides; other errors propagate."""
        self._verdict.put_nowait((after, differences, then))
        self.join()
        if self.error is not None and self.decided and not is_unavailable(self.error):
            raise self.error
        if self.error is not None:
            return fallback()
        if self.recorded:
            hooks.after_run(Run.objects.get(pk=self.run_obj.pk))
        return bool(self.recorded)
