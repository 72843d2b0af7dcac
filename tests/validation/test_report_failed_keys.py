"""The report's set of the keys a run failed: read without the model's ordering (a join to
the run and a sort of every key, 0.27 -> 0.20 s of server CPU at 165,878 records), the same
set, and a row the run failed is still left out of the expected side."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.enums import RunStatus
from runs.models import FailedRecord
from runs.services import run_create
from runs.services.state import run_entities
from validation.reconciliation import _failed_keys

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_failed_keys_are_read_without_join_or_sort(eager_celery, demo_plan, demo_target_db):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    entity = next(e for e in run_entities(run) if e.name == "accounts")
    want = set(FailedRecord.objects.filter(run=run, entity="accounts").values_list(
        "source_key", flat=True))  # fmt: skip
    assert want  # the demo's dirty rows fail
    with CaptureQueriesContext(connection) as seen:
        keys = _failed_keys(run, entity)
    assert len(keys) == len(want)
    probe = sorted(want) + ["not-a-failed-key"]
    assert keys.contains(probe).tolist() == [True] * len(want) + [False]
    (query,) = [q["sql"] for q in seen.captured_queries if "source_key" in q["sql"]]
    assert "JOIN" not in query and "ORDER BY" not in query
