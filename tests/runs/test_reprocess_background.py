"""Large re-process selections go to a Celery task (eager here) in chunks."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import FailedRecord, RunLog
from runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_large_selection_is_reprocessed_in_the_background(
    eager_celery, demo_plan, analyst, client_for, monkeypatch
):
    monkeypatch.setattr("runs.views.queue.REPROCESS_INLINE", 5)
    monkeypatch.setattr("runs.services.queue.BACKGROUND_CHUNK", 3)
    run = run_create(plan=demo_plan, user=None, mode="load")
    emails = FailedRecord.objects.filter(run=run, entity="accounts", field="email")
    ids = list(emails.values_list("pk", flat=True))
    count = len(ids)
    assert count > 3  # at least two chunks
    for record in emails:
        record.corrected_values = {"Email_Address": f"fixed{record.source_key}@example.com"}
        record.status = "fixed"
        record.save()
    response = client_for(analyst).post(
        reverse("runs:queue_reprocess"),
        {"run": str(run.uuid), "scope": "filter", "entity": "accounts", "field": "email"},
        follow=True,
    )
    assert "in the background" in response.content.decode()
    handled = FailedRecord.objects.filter(pk__in=ids, handled_by=analyst)
    assert handled.count() == count
    closed = handled.filter(status="reprocessed").count()
    assert (
        closed > 0
        and RunLog.objects.filter(run=run, message__startswith="Re-processed").count() >= 2
    )
