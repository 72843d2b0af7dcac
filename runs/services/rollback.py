"""Rollback of a run from the target's ledger, verified against the pre-run checksums."""

from __future__ import annotations

import contextlib

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.connections import connector_for
from runs.engine.errors import EngineError, TransientError, is_unavailable
from runs.engine.rollback import rollback_run
from runs.enums import (
    LeasePurpose,
    LogLevel,
    RollbackStatus,
    RunMode,
    RunStatus,
)
from runs.models import Rollback, Run

from .claims import ClaimHeartbeat, db_retrying, lease_delta, worker_id
from .dispatch import enqueue_rollback
from .hooks import rollback_started
from .leases import (
    TableBusy,
    lease_seconds,
    table_lease_acquire,
    table_lease_release,
    table_lease_renew,
    table_lease_wait,
)
from .logging import run_log
from .rollback_order import (
    RollbackOrderError,
    run_rollback_blockers,
    run_rollback_stack,
    run_tables,
)
from .rollback_record import EarlyRecord, rollback_record
from .state import run_entities, run_ledger_id

ROLLBACKABLE = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def _check_request(run: Run, user) -> None:
    if user is not None and not user.has_perm("mp.rollback_run"):
        raise PermissionDeniedError("Only an operator may roll a run back.")
    if run.mode == RunMode.DRY_RUN:
        raise ApplicationError("A dry run wrote nothing to the target; there is nothing to undo.")


def _lease_for_rollback(run: Run, user) -> None:
    """Take the rollback lease now, unless the run's own re-processing holds a table: the
    rollback task then waits for it (re-processing stops once it sees the run rolling back)."""
    try:
        table_lease_acquire(
            run=run, tables=run_tables(run), purpose=LeasePurpose.ROLLBACK, user=user
        )
    except TableBusy as busy:
        if busy.lease.run_id != run.pk:
            raise


@transaction.atomic
def run_rollback_request(
    *, run: Run, user, reason: str = "", chain: list[int] = (), enqueue: bool = True
) -> Rollback:
    """Mark the run rolling back, lease its tables and queue the undo (``enqueue=False``: the
    caller executes it); ``chain`` (run ids) is rolled back next, in order, each only after
    this one verified. The rows of the run and its chain are locked and the rollback-started
    hooks run in the transaction (reports: superseded). Transactional; raises
    PermissionDeniedError (not an operator), RollbackOrderError (later runs wrote the same
    tables: 409), TableBusy (another run writes a table: 409) or ApplicationError (dry run,
    still running)."""
    _check_request(run, user)
    # the chain's rows too (in id order): a report of a chained run is stored under its row's
    # lock, so it is stored before this request (and superseded by it) or finds it started;
    # a queue action on their records (queue_guard) ends its short write first, then sees it
    rows = Run.objects.select_for_update().filter(pk__in=[run.pk, *chain]).order_by("pk")
    locked = next(r for r in rows if r.pk == run.pk)
    if locked.status not in ROLLBACKABLE:
        raise ApplicationError(
            f"A {locked.get_status_display().lower()} run cannot be rolled back; wait until it "
            "ends (cancel it first if needed)."
        )
    # runs of the chain interleaved with this one: their later batches are undone with it
    blockers = [b for b in run_rollback_blockers(run=locked) if b.pk not in set(chain)]
    if blockers:
        raise RollbackOrderError(locked, blockers)
    _lease_for_rollback(locked, user)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.ROLLING_BACK)
    rollback = Rollback.objects.create(
        run=run, requested_by=user, checksums_before_run=run.pre_checksums, chain=list(chain)
    )
    audit_record(
        action=AuditAction.ROLLBACK,
        actor=user,
        obj=run,
        before={"status": locked.status},
        after={"status": "rolling_back", "reason": reason, "then": list(chain)},
    )
    run_log(
        run,
        f"Rollback requested by {getattr(user, 'username', 'the system')}"
        f"{': ' + reason if reason else ''}.",
        LogLevel.WARNING,
    )
    rollback_started(rollback)  # the reports of the run and its chain are superseded
    if enqueue:
        enqueue_rollback(rollback.pk)
    return rollback


def run_rollback_stack_request(*, run: Run, user, reason: str = "") -> Rollback:
    """Roll back every run that must go first (``run_rollback_stack``: by the ledger's commit
    order, transitively) newest first, and ``run``: each one verified before the next starts
    (a run's rollback also undoes chained runs' batches that committed after its first one);
    the chain stops at the first mismatch or failure. Returns the first rollback. Raises as
    run_rollback_request."""
    _check_request(run, user)
    order = run_rollback_stack(run=run)
    for later in order:
        if later.pk == run.pk:
            continue
        if later.status not in ROLLBACKABLE:
            raise ApplicationError(
                f"Run #{later.pk} is {later.get_status_display().lower()}; it must end (cancel "
                "it if needed) before the runs can be rolled back."
            )
    return run_rollback_request(
        run=order[0], user=user, reason=reason, chain=[r.pk for r in order[1:]]
    )


def _verify(run: Run, target) -> tuple[dict, dict]:
    after, differences = {}, {}
    for entity in run_entities(run):
        table = entity.target_table
        if table not in run.pre_checksums:
            continue
        # in the form the run's digest was taken in (a run recorded before a form change)
        like = run.pre_checksums[table].get("digest")
        checksum = target.table_checksum(table, [entity.target_key], like=like)
        after[table] = {"rows": checksum.rows, "digest": checksum.digest}
        if after[table] != run.pre_checksums[table]:
            differences[table] = {"before": run.pre_checksums[table], "after": after[table]}
    return after, differences


def _wait_for_tables(rollback: Rollback, run: Run, mine) -> bool:
    """Hold the rollback lease before undoing: waits while the run's own re-processing
    finishes. False (rollback failed, with the holder named) when another run holds a table."""
    try:
        table_lease_wait(
            run=run,
            tables=run_tables(run),
            purpose=LeasePurpose.ROLLBACK,
            user=rollback.requested_by,
            timeout=lease_seconds(),
        )
    except TableBusy as busy:
        _fail(rollback, run, f"Rollback cannot start: {busy.message}.", mine)
        return False
    return True


def _fail(rollback: Rollback, run: Run, message: str, mine) -> None:
    """The rollback failed (as long as this claim holds it): say why, free the tables."""
    if not mine.update(
        status=RollbackStatus.FAILED, error=message, finished_at=timezone.now(), lease_until=None
    ):
        return  # another attempt holds the rollback now
    run_log(run, message, LogLevel.ERROR)
    table_lease_release(run=run, purpose=LeasePurpose.ROLLBACK)
    if rollback.chain:
        run_log(run, f"Chained rollback of runs {rollback.chain} not started.", LogLevel.ERROR)


class _ClaimLost(Exception):
    """The supervisor handed this rollback to another attempt (our lease ran out)."""


def _rollback_claim(rollback: Rollback):
    """Claim the rollback for this process (unclaimed, or its lease expired); returns the
    queryset that matches only while this claim holds, or None (a live claim holds it)."""
    now = timezone.now()
    claimable = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    if not Rollback.objects.filter(claimable, pk=rollback.pk, status=RollbackStatus.RUNNING).update(
        lease_until=now + lease_delta(), attempts=F("attempts") + 1, worker=worker_id()
    ):
        return None
    rollback.refresh_from_db(fields=["lease_until", "attempts", "worker"])
    if rollback.attempts > 1:
        run_log(
            rollback.run,
            f"Rollback resumed (attempt {rollback.attempts}) where it stopped: batches already "
            "undone have left the ledger.",
            LogLevel.WARNING,
        )
    return Rollback.objects.filter(
        pk=rollback.pk, status=RollbackStatus.RUNNING, attempts=rollback.attempts
    )


def run_rollback_execute(*, rollback_id: int) -> Rollback:
    """Undo the run's batches in reverse order, then verify checksums; then start the next
    rollback of the chain if this one verified. Claims the rollback under a lease renewed
    while it works (the supervisor re-queues it when the lease expires); a second call while
    a live claim holds it does nothing. Idempotent and resumable: a crashed rollback runs again
    from the batches still in the ledger, each batch undone once. Raises TransientError (a
    database is unavailable) for the task to retry."""
    rollback = Rollback.objects.select_related("run__target", "run__version", "requested_by").get(
        pk=rollback_id
    )
    if rollback.status != RollbackStatus.RUNNING:
        return rollback
    mine = _rollback_claim(rollback)
    if mine is None:
        return rollback
    keeper = ClaimHeartbeat(mine)
    keeper.start()
    try:
        decided = _execute(rollback, mine)
    except _ClaimLost:
        decided = False
    finally:
        keeper.stop.set()
    rollback.refresh_from_db()
    if decided and rollback.chain and rollback.status != RollbackStatus.VERIFIED:
        _chain_stopped(rollback)
    return rollback


def _log_interleaved(run: Run, chained: list[Run], summary) -> None:
    """Say on each chained run which of its batches this rollback undid (they committed after
    this run's first batch; the chained run's own rollback undoes the rest)."""
    for other in chained:
        undone = [b for r, b in summary.others if r == run_ledger_id(other)]
        if undone:
            run_log(
                other,
                f"{len(undone)} batch(es) of this run committed after run #{run.pk} started "
                f"writing: undone by the rollback of run #{run.pk} (reverse commit order); "
                "this run's own rollback follows.",
                LogLevel.WARNING,
            )


def _execute(rollback: Rollback, mine) -> bool:
    """Undo, verify, record; True when this claim recorded the verdict. The final transaction
    begins beside the undo (``EarlyRecord``) where the app database allows."""
    run = rollback.run
    if not _wait_for_tables(rollback, run, mine):
        return False
    target = connector_for(run.target)
    early = EarlyRecord.begin(rollback, run, mine)
    try:
        after, differences = _undo(rollback, run, mine, target)
    except BaseException:
        if early is not None:
            early.abandon()
        raise
    if after is None:
        if early is not None:
            early.abandon()
        return False  # a failed rollback starts no chained one (_fail says so)

    # a stack's next rollback is requested in the verdict's transaction: no moment between
    # the two leaves the next run outside any running rollback (its queue workable)
    then = (lambda: _chain_next_request(rollback)) if rollback.chain else None

    def record() -> bool:
        return db_retrying(
            lambda: rollback_record(rollback, run, mine, after, differences, then),
            what=f"recording rollback {rollback.pk}",
        )

    return record() if early is None else early.decide(after, differences, record, then)


def _undo(rollback: Rollback, run: Run, mine, target) -> tuple[dict | None, dict]:
    """The batches undone and the target verified: (checksums after, differences), or
    (None, {}) when the rollback failed (recorded by _fail). Raises TransientError (a
    database unavailable; the claim given back) and _ClaimLost."""
    try:
        chained = list(Run.objects.filter(pk__in=rollback.chain))
        summary = rollback_run(
            target=target,
            run_id=run_ledger_id(run),
            on_progress=lambda _done, _total, result: _progress(rollback, run, mine, result),
            interleaved=[run_ledger_id(r) for r in chained],
        )
        _log_interleaved(run, chained, summary)
        return _verify(run, target)
    except _ClaimLost:
        raise
    except Exception as exc:  # noqa: BLE001 - transient: retried; engine: the rollback fails
        if is_unavailable(exc):
            _unclaim(mine)
            raise TransientError(f"rollback {rollback.pk}: {exc}") from exc
        if not isinstance(exc, EngineError):
            raise
        _fail(rollback, run, f"Rollback failed: {exc}", mine)
        return None, {}


def _progress(rollback: Rollback, run: Run, mine, result) -> None:
    """After each batch undone (its target transaction committed): add its counts (each batch
    is undone once over all attempts: it leaves the ledger with its undo), renew the table
    lease, and stop a late original whose claim was handed on."""

    def count() -> None:
        Rollback.objects.filter(pk=rollback.pk).update(
            batches_undone=F("batches_undone") + int(result.found),
            rows_deleted=F("rows_deleted") + result.deleted,
            rows_restored=F("rows_restored") + result.restored,
        )

    db_retrying(count, what=f"counting rollback {rollback.pk}")
    db_retrying(
        lambda: table_lease_renew(run=run, purpose=LeasePurpose.ROLLBACK), what="table lease"
    )
    if not mine.exists():
        raise _ClaimLost


def _unclaim(mine) -> None:
    """Give the claim back at once (the task's retry, or the supervisor, takes it again)."""
    # if our database stays down, the lease runs out by itself
    with contextlib.suppress(TransientError):
        db_retrying(lambda: mine.update(lease_until=None), what="rollback unclaim")


def _chain_stopped(rollback: Rollback) -> None:
    """Say on the run that the chain stops at a rollback that did not verify."""
    run = rollback.run
    run_log(
        run,
        f"Chained rollback stopped at run #{run.pk} ({rollback.get_status_display()}); "
        f"runs {', '.join(f'#{pk}' for pk in rollback.chain)} were not rolled back.",
        LogLevel.ERROR,
    )


def _chain_next_request(rollback: Rollback) -> None:
    """Request the chain's next rollback, inside the transaction recording this (verified)
    one's verdict; a refusal (its own savepoint rolled back) is logged and stops the chain."""
    following = Run.objects.select_related("version", "target").get(pk=rollback.chain[0])
    try:
        run_rollback_request(
            run=following,
            user=rollback.requested_by,
            reason=f"after run #{rollback.run_id} (rolled back first, newest first)",
            chain=rollback.chain[1:],
        )
    except (ApplicationError, RollbackOrderError) as exc:
        run_log(following, f"Chained rollback not started: {exc.message}", LogLevel.ERROR)
