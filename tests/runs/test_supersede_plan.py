"""What the supersede at a run's end reads (issue 15, the re-run's tail): after a re-run that
carried every earlier failure, the earlier run's records are "carried" and their old "open"
versions dead until vacuum; the supersede must not walk them. Counts and plans, no clock."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from runs.enums import FailedRecordStatus
from runs.models import Batch, FailedRecord, Run
from runs.services import failed_records_supersede
from runs.services.queue_actions import _earlier_runs, _same_row_in, _supersedable
from runs.services.recording import failed_records_carry
from tests.factories import PlanFactory
from tests.runs.test_console_queue import _records, _run

pytestmark = pytest.mark.django_db


def _carry_all(earlier: Run, later: Run) -> None:
    batch = Batch.objects.create(run=later, entity="accounts", seq=1)
    ids = list(FailedRecord.objects.filter(run=earlier).values_list("pk", flat=True))
    failed_records_carry(run=later, batch=batch, record_ids=ids)


def _failed_record_loops(run: Run) -> int:
    """Loops of every plan node on runs_failedrecord when the supersede's scan is run."""
    sql, params = _supersedable(run)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node: dict) -> int:
        own = node.get("Actual Loops", 0) if node.get("Relation Name") == "runs_failedrecord" else 0
        return own + sum(walk(child) for child in node.get("Plans", []))

    return walk(plan[0]["Plan"])


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
    assert _failed_record_loops(again) == 0
    assert failed_records_supersede(run=again) == 0
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
