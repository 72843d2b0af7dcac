"""Run-side model invariants."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from mappings.models import PlanVersion
from runs.models import Batch, FailedRecord, Run
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    return Run.objects.create(plan=plan, version=version, target=plan.target)


def test_run_cannot_finish_without_starting(run):
    run.finished_at = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        run.save()


def test_batch_seq_unique_in_run(run):
    Batch.objects.create(run=run, entity="accounts", seq=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Batch.objects.create(run=run, entity="accounts", seq=1)


def test_failed_record_unique_per_run_entity_key(run):
    FailedRecord.objects.create(
        run=run,
        entity="accounts",
        source_key="7",
        stage="transform",
        category="invalid_format",
        message="bad phone",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        FailedRecord.objects.create(
            run=run,
            entity="accounts",
            source_key="7",
            stage="load",
            category="too_long",
            message="x",
        )


def test_failed_record_ignore_needs_reason(run):
    record = FailedRecord.objects.create(
        run=run, entity="a", source_key="1", stage="transform", category="c", message="m"
    )
    record.status = "ignored"
    with pytest.raises(IntegrityError), transaction.atomic():
        record.save()
    record.ignore_reason = "duplicate of customer 12"
    record.save()


def test_counters_cannot_go_negative(run):
    run.failed = -1
    with pytest.raises(IntegrityError), transaction.atomic():
        run.save()


def test_failed_records_follow_their_run_and_batch_without_database_constraints(run):
    """FailedRecord has no database FK constraints (cheaper bulk writes): deletes must still
    cascade from the run and clear the batch and handler links, through Django."""
    from tests.factories import UserFactory

    handler = UserFactory()
    batch = Batch.objects.create(run=run, entity="accounts", seq=1)
    other = Run.objects.create(plan=run.plan, version=run.version, target=run.target)

    def record(r, key):
        return FailedRecord.objects.create(
            run=r,
            batch=batch if r == run else None,
            entity="accounts",
            source_key=key,
            stage="transform",
            category="invalid_format",
            message="bad",
        )

    kept_on_batch_delete, gone_with_run = record(run, "1"), record(run, "2")
    survivor = record(other, "1")
    FailedRecord.objects.filter(pk=survivor.pk).update(handled_by=handler)
    handler.delete()
    survivor.refresh_from_db()
    assert survivor.handled_by_id is None
    batch.delete()
    kept_on_batch_delete.refresh_from_db()
    assert kept_on_batch_delete.batch_id is None
    run.delete()
    assert not FailedRecord.objects.filter(pk=gone_with_run.pk).exists()
    assert list(FailedRecord.objects.values_list("pk", flat=True)) == [survivor.pk]
