"""What the supersede at a run's end reads (issue 15, the re-run's tail): after a re-run that
carried every earlier failure, the earlier run's records are "carried" and their old "open"
versions dead until vacuum; the supersede must not walk them. Counts and statements, no clock."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.enums import FailedRecordStatus
from runs.models import Batch, FailedRecord, Run
from runs.services import failed_records_supersede
from runs.services.queue_actions import _earlier_runs, _same_row_in
from runs.services.recording import failed_records_carry
from tests.factories import PlanFactory
from tests.runs.test_console_queue import _records, _run

pytestmark = pytest.mark.django_db


def _carry_all(earlier: Run, later: Run) -> None:
    batch = Batch.objects.create(run=later, entity="accounts", seq=1)
    ids = list(FailedRecord.objects.filter(run=earlier).values_list("pk", flat=True))
    failed_records_carry(run=later, batch=batch, record_ids=ids)


def _statements_on_failed_records(run: Run) -> tuple[int, list[str]]:
    """What the supersede returns, and its statements that read or write failed records."""
    with CaptureQueriesContext(connection) as queries:
        marked = failed_records_supersede(run=run)
    return marked, [q["sql"] for q in queries.captured_queries if '"runs_failedrecord"' in q["sql"]]


def _old_marks(run: Run) -> set[int]:
    """What the supersede marked before it was gated by the tally (the oracle)."""
    return set(
        FailedRecord.objects.filter(
            run_id__in=_earlier_runs(run).values("pk"),
            status__in=(FailedRecordStatus.OPEN, FailedRecordStatus.FIXED),
        )
        .filter(_same_row_in(run))
        .values_list("pk", flat=True)
    )


def test_supersede_after_a_rerun_that_carried_everything_reads_no_failed_record():
    plan = PlanFactory()
    first, again = _run(plan, 0), _run(plan, 1)
    FailedRecord.objects.bulk_create(_records(first, 3000))
    _carry_all(first, again)
    assert _statements_on_failed_records(again) == (0, [])
    assert set(FailedRecord.objects.filter(run=first).values_list("status", flat=True)) == {
        "carried"
    }


def test_supersede_marks_what_it_marked_before_the_tally_gate():
    plan = PlanFactory()
    first, second, again = _run(plan, 0), _run(plan, 1), _run(plan, 2)
    FailedRecord.objects.bulk_create(_records(first, 300))
    FailedRecord.objects.bulk_create(_records(second, 100, start=250))  # keys 250..349
    FailedRecord.objects.filter(run=first, source_key__lt="K0000020").update(status="fixed")
    FailedRecord.objects.filter(run=first, source_key__gte="K0000290").update(
        status="ignored", ignore_reason="known"
    )
    _carry_all(first, again)  # keys 0..299: open ones carried, fixed/ignored left as they are
    FailedRecord.objects.bulk_create(_records(again, 60, start=300))  # keys 300..359, anew
    expected = _old_marks(again)
    assert len(expected) == 20 + 100  # first's fixed ones, second's every record
    assert failed_records_supersede(run=again) == len(expected)
    assert (
        set(FailedRecord.objects.filter(status="superseded").values_list("pk", flat=True))
        == expected
    )
    assert failed_records_supersede(run=again) == 0  # idempotent
