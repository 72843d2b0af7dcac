"""REVIEW9 J2-2 / J2-7: the run page's "Tables being written" card is refreshed with the live
partial (gone once the run ended), a paused run shows no ETA, and the launch confirmation says
who holds a table's lease instead of offering "Launch load now". Real PostgreSQL; the first
run stays queued (no worker) and holds its tables."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.enums import RunStatus
from runs.models import Run, TableLease
from runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
CARD = "Tables being written"


def test_launch_confirmation_names_the_lease_holder_and_offers_no_launch(
    demo_plan, analyst, client_for
):
    first = run_create(plan=demo_plan, user=analyst, mode="load")  # no worker: holds the tables
    client = client_for(analyst)
    url = reverse("runs:launch", args=[demo_plan.slug])
    form = {"target": demo_plan.target.name, "mode": "load", "scope_entity": "contacts"}
    page = client.post(url, form).content.decode()
    assert "This run would be refused." in page
    assert f"contacts is being written by run #{first.pk} (load)" in page
    assert "Launch load now" not in page
    dry = client.post(url, {**form, "mode": "dry_run"}).content.decode()
    assert "This run would be refused." not in dry and 'name="confirm"' in dry  # needs no lease
    assert Run.objects.count() == 1


def test_run_page_lease_card_follows_the_run_and_a_paused_run_has_no_eta(
    demo_plan, analyst, client_for
):
    run = run_create(plan=demo_plan, user=analyst, mode="load")
    client = client_for(analyst)
    live = reverse("runs:run_live", args=[run.uuid])
    assert CARD in client.get(live).content.decode()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)
    paused = client.get(live).content.decode()
    assert "<b>paused</b><small>ETA</small>" in paused
    # the run ended; its leases are not yet gone (released after the status changes)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    assert TableLease.objects.filter(run=run).exists()
    ended = client.get(live)
    assert ended.status_code == 286 and CARD not in ended.content.decode()
    assert CARD not in client.get(run.get_absolute_url()).content.decode()
