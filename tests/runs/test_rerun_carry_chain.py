"""Re-runs of an unchanged source carry the earlier failures (issue 15): what the error queue
and rollback must show however a carry is stored (a copy per record, or a batch carried by
reference). Read through the queue's own selectors, never the records table: a chain of
three runs, counts once across runs, a carried record re-processed and then rolled back, and
rollback giving the earlier run its workable failures back. Real PostgreSQL source and
target, eager Celery."""

from __future__ import annotations

import pytest

from runs.enums import RollbackStatus
from runs.models import Run
from runs.selectors import failed_record_filter, failed_record_total
from runs.services import (
    RollbackOrderError,
    failed_record_correct,
    failed_record_reprocess,
    run_rollback_request,
)
from tests.runs import test_rerun_unchanged as unchanged
from tests.support import pg

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.postgres,
]
source_db, target_db, plan = unchanged.source_db, unchanged.target_db, unchanged.plan
_load = unchanged._load
WORKABLE = {"status": "workable"}


def _keys(run: Run | None, status: str = "workable") -> list[tuple[str, str]]:
    """(entity, source key) of the records the queue shows for ``run`` (None: every run)."""
    qs = failed_record_filter(run=run, status=status)
    return sorted(qs.values_list("entity", "source_key"))


def _count(run: Run | None, status: str = "workable") -> int:
    """The queue's total for the filter (the tally on PostgreSQL)."""
    return failed_record_total(run=run, filters={"status": status})[0]


def _failing(run: Run) -> list[tuple[str, str]]:
    """Every failure ``run`` accounts for, whatever its status now."""
    return sorted(
        k
        for status in ("open", "fixed", "reprocessed", "ignored")
        for k in _keys(run, status=status)
    )


def _rollback(run: Run, operator) -> None:
    rollback = run_rollback_request(run=run, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == RollbackStatus.VERIFIED, rollback.error


def test_a_chain_of_three_unchanged_runs_shows_each_failure_once_in_the_newest(
    eager_celery, plan, operator
):
    first = _load(plan)
    failing = _keys(first)
    assert len(failing) == first.failed > 0
    second = _load(plan)
    third = _load(plan)
    assert third.failed == second.failed == first.failed
    # the newest run's queue holds every failure, the earlier ones none workable
    assert _keys(third) == failing and _count(third) == first.failed
    assert _keys(first) == _keys(second) == [] and _count(first) == _count(second) == 0
    assert _count(first, "carried") == _count(second, "carried") == first.failed
    # across runs each key once, counted once
    assert _keys(None) == failing and _count(None) == first.failed
    # rolled back newest first, each run's failures are workable again in turn
    _rollback(third, operator)
    assert _keys(second) == failing and _count(second) == first.failed
    assert _keys(None) == failing and _count(None) == first.failed
    assert _keys(first) == [] and _count(third) == 0
    _rollback(second, operator)
    assert _keys(first) == failing and _count(first) == first.failed
    assert _keys(None) == failing and _count(None) == first.failed


def test_the_earlier_run_cannot_be_rolled_back_while_a_later_run_carries_its_failures(
    eager_celery, plan, operator
):
    first = _load(plan)
    second = _load(plan)
    assert (second.inserted, second.updated) == (0, 0)  # it wrote nothing, carried all
    with pytest.raises(RollbackOrderError) as refused:
        run_rollback_request(run=first, user=operator)
    assert [r["run"] for r in refused.value.extra["later_runs"]] == [second.pk]
    assert _keys(second) == _keys(None) and _count(first) == 0


def test_rolling_back_the_rerun_gives_the_earlier_run_its_workable_failures_back(
    eager_celery, plan, operator
):
    first = _load(plan)
    failing = _keys(first)
    second = _load(plan)
    assert _failing(second) == failing and _count(first) == 0
    _rollback(second, operator)
    assert _keys(first) == failing and _count(first) == first.failed
    assert _keys(second) == [] and _count(second) == 0
    assert _keys(None) == failing and _count(None) == first.failed
    # and a run after the rollback carries them again, from the first run
    third = _load(plan)
    assert _keys(third) == failing and _count(first) == 0 and _count(None) == first.failed


def test_a_carried_record_reprocessed_in_the_newest_run_is_undone_by_its_rollback(
    eager_celery, plan, target_db, operator
):
    first = _load(plan)
    second = _load(plan)
    records = failed_record_filter(run=second, status="workable", field="email")
    record = next(r for r in records.order_by("id") if len(r.errors) == 1)
    key = record.source_key
    email = f"fixed{key}@example.com"
    failed_record_correct(record=record, user=operator, values={"Email_Address": email})
    result = failed_record_reprocess(
        records=failed_record_filter(run=second, status="workable").filter(source_key=key),
        user=operator,
    )
    assert (result.attempted, result.fixed) == (1, 1)
    second.refresh_from_db()
    # the newest run's accounting and queue: the key loaded, one failure fewer
    assert (second.failed, second.inserted) == (first.failed - 1, 1)
    assert ("accounts", key) not in _keys(second) and ("accounts", key) not in _keys(None)
    assert _keys(second, "reprocessed") == [("accounts", key)]
    assert _count(None) == first.failed - 1 and _count(first) == 0
    assert pg.query(target_db, "SELECT email FROM accounts WHERE account_number = %s", (key,))
    # the newest run rolled back: the row is gone, the key is the first run's open failure
    _rollback(second, operator)
    assert not pg.query(target_db, "SELECT 1 FROM accounts WHERE account_number = %s", (key,))
    assert ("accounts", key) in _keys(first)
    assert _count(first) == first.failed and _count(None) == first.failed
    assert _keys(first, "reprocessed") == []
