"""A batch's queries to the app database (issue 20: the workers' CPU per batch): the claim
reads the run with its plan, source and target at once, both carry lookups share one query
for the earlier runs, and the ledger index is one INSERT."""

from __future__ import annotations

import pytest

from runs.models import Batch, LedgerEntry
from runs.services import batch_execute, run_prepare
from tests.runs.inline_runs import launch

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_batch_takes_16_app_queries(demo_plan, django_assert_num_queries):
    demo_plan.batch_size = 100
    demo_plan.save(update_fields=["batch_size"])
    run = launch(demo_plan, scope_entity="accounts")
    run_prepare(run_id=run.pk)
    first, middle, *_ = Batch.objects.filter(run=run).order_by("seq")
    assert batch_execute(batch_id=first.pk) == "done"
    # run status, claim, batch with run/plan/source/target, earlier runs; then (one
    # transaction) BEGIN, batch done, the failed records' savepoint pair, ledger index,
    # run counters, run log, COMMIT; then threshold, advance (run, busy batches), leases.
    # The failed records' COPY goes through the raw cursor and is not counted here.
    with django_assert_num_queries(16):
        assert batch_execute(batch_id=middle.pk) == "done"
    entry = LedgerEntry.objects.get(batch=middle)
    assert (entry.entity, entry.inserted, entry.target_table) == ("accounts", 84, "accounts")
