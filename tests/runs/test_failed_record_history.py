"""REVIEW9 J1-5: a failed record keeps its original failure (stage, rule, message) when a
re-process fails again, lists the later attempts, and shows the original once it passes.
Dry run of the demo plan (real PostgreSQL source), inline; through the record's page."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

from runs.enums import FailedRecordStatus
from runs.models import FailedRecord
from runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_failed_reprocess_keeps_the_original_failure_and_lists_the_attempt(
    client_for, analyst, demo_plan, eager_celery
):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    records = FailedRecord.objects.filter(run=run, entity="accounts", field="email")
    record = next(r for r in records if len(r.errors) == 1)
    original = (record.stage, record.rule, record.message)
    client = client_for(analyst)
    correct = reverse("runs:failed_record_correct", args=[record.uuid])
    client.post(correct, {"v:Email_Address": "still wrong", "reprocess": "1"})
    record.refresh_from_db()
    assert record.status in (FailedRecordStatus.OPEN, FailedRecordStatus.FIXED)
    assert record.message != original[2]
    attempt = record.message
    stored = record.earlier_failures[0]
    assert (stored["stage"], stored["rule"], stored["message"]) == original
    page = client.get(reverse("runs:failed_record", args=[record.uuid])).content.decode()
    assert "Original failure" in page and "Latest attempt" in page
    assert escape(original[2]) in page.split('id="original-failure"')[1].split("</dd>")[0]
    client.post(correct, {"v:Email_Address": "fixed@example.com", "reprocess": "1"})
    record.refresh_from_db()
    assert record.status == FailedRecordStatus.REPROCESSED
    page = client.get(reverse("runs:failed_record", args=[record.uuid])).content.decode()
    shown = page.split('id="original-failure"')[1].split("</dd>")[0]
    assert escape(original[2]) in shown and escape(attempt) not in shown
    assert escape(attempt) in page.split('id="later-attempts"')[1].split("</ol>")[0]
