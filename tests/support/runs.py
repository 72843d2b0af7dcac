"""Runs for tests: one launched and finished in-process (eager Celery)."""

from __future__ import annotations

from runs.enums import RunStatus
from runs.models import Run
from runs.services import run_create


def run_finished(plan, user, mode: str = "load") -> Run:
    """Launch a run of ``plan`` (eager Celery: it ends before this returns) and assert it
    succeeded; the run as stored."""
    run = run_create(plan=plan, user=user, mode=mode)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def deltas_then_a_mismatch(plan, src: str, tgt: str, user, after_first=None) -> tuple[Run, Run]:
    """On the sync plan (tests.runs.conftest.sync_plan): a load, two deltas (each changing
    rows 1..10) and then a row edited in the target (id 300), so the second delta's rollback
    finds a checksum mismatch and a stack rollback of the first stops there. ``after_first``
    (the first delta) runs before the second. Returns (first delta, second delta)."""
    from tests.support import pg

    run_finished(plan, user)
    pg.query(src, "UPDATE src SET amount = amount + 1 WHERE id <= 10")
    first = run_finished(plan, user, mode="delta")
    if after_first is not None:
        after_first(first)
    pg.query(src, "UPDATE src SET amount = amount + 1 WHERE id <= 10")
    second = run_finished(plan, user, mode="delta")
    pg.query(tgt, "UPDATE tgt SET name = 'edited after' WHERE id = 300")
    return first, second
