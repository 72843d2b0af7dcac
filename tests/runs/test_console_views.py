"""The runs console pages: launch with its production gate, the live page and its polling
partial, controls per role, the error queue worked through the views, rollback."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mappings.services import plan_version_create
from runs.enums import FailedRecordStatus, RunStatus
from runs.models import FailedRecord, Rollback, Run
from runs.services import run_create, run_prepare
from tests.support import pg
from validation.models import SignOff

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _launch_url(plan) -> str:
    return reverse("runs:launch", args=[plan.slug])


def _post_launch(client, plan, mode="dry_run", confirm=True, **extra):
    data = {"target": plan.target.name, "mode": mode, "scope_entity": "", **extra}
    if confirm:
        data["confirm"] = "1"
    return client.post(_launch_url(plan), data)


def _make_production(plan) -> None:
    plan.target.environment = "prod"
    plan.target.save()


def _sign_off(plan, approver) -> None:
    version = plan_version_create(plan=plan, user=None, note="for sign-off")
    SignOff.objects.create(plan=plan, version=version, approver=approver, decision="approved")


def _single_error_record(run, field: str) -> FailedRecord:
    records = FailedRecord.objects.filter(run=run, entity="accounts", field=field)
    return next(r for r in records if len(r.errors) == 1)


def test_launch_preview_lists_entities_rows_and_batches(client_for, analyst, demo_plan):
    client = client_for(analyst)
    response = _post_launch(client, demo_plan, confirm=False)
    assert response.status_code == 200
    preview = response.context["preview"]
    assert [e["name"] for e in preview.entities] == ["accounts", "contacts", "orders"]
    assert [e["rows"] for e in preview.entities] == [300, 600, 900]
    size = demo_plan.batch_size
    assert [e["batches"] for e in preview.entities] == [-(-n // size) for n in (300, 600, 900)]
    assert Run.objects.count() == 0


def test_launch_estimate_and_planned_batches_agree(client_for, analyst, demo_plan):
    """300/600/900 rows in batches of 200 and of 300: multiples and not; no empty last batch."""
    from django.db.models import Count

    from runs.models import Batch

    for size, expected in ((200, [2, 3, 5]), (300, [1, 2, 3])):
        demo_plan.batch_size = size
        demo_plan.save()
        preview = _post_launch(client_for(analyst), demo_plan, confirm=False).context["preview"]
        run = run_create(plan=demo_plan, user=None, mode="dry_run")
        run_prepare(run_id=run.pk)  # batches planned (queued on the broker; no worker)
        planned = dict(
            Batch.objects.filter(run=run, kind="rows")
            .values_list("entity")
            .annotate(n=Count("id"))
            .values_list("entity", "n")
        )
        assert [e["batches"] for e in preview.entities] == expected
        assert [planned[e["name"]] for e in preview.entities] == expected
        assert preview.total_batches == sum(expected)
        Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)


def test_viewer_cannot_open_or_post_launch(client_for, viewer, demo_plan):
    client = client_for(viewer)
    assert client.get(_launch_url(demo_plan)).status_code == 403
    assert _post_launch(client, demo_plan).status_code == 403
    assert Run.objects.count() == 0


def test_analyst_launches_dry_run_and_lands_on_run_page(
    client_for, analyst, demo_plan, eager_celery
):
    response = _post_launch(client_for(analyst), demo_plan)
    run = Run.objects.get()
    assert response.status_code == 302 and response.url == run.get_absolute_url()
    assert (run.launched_by, run.status) == (analyst, RunStatus.SUCCEEDED)


def test_analyst_refused_on_production_target(client_for, analyst, demo_plan):
    _make_production(demo_plan)
    response = _post_launch(client_for(analyst), demo_plan, mode="load")
    assert response.status_code == 403
    assert b"Only an operator" in response.content
    assert Run.objects.count() == 0


def test_production_launch_without_signoff_is_refused_with_link(client_for, operator, demo_plan):
    _make_production(demo_plan)
    client = client_for(operator)
    preview = _post_launch(client, demo_plan, mode="load", confirm=False)
    assert "must be signed off" in preview.context["preview"].refusal
    assert b'id="signoff-refusal"' in preview.content and b"Launch Load now" not in preview.content
    response = _post_launch(client, demo_plan, mode="load")
    assert response.status_code == 400
    assert "must be signed off" in response.context["launch_error"]
    assert f'href="/plans/{demo_plan.slug}/signoff/"'.encode() in response.content
    assert Run.objects.count() == 0


def test_operator_launches_production_run_after_signoff(
    client_for, operator, approver, demo_plan, eager_celery
):
    _make_production(demo_plan)
    _sign_off(demo_plan, approver)
    response = _post_launch(client_for(operator), demo_plan, mode="load")
    run = Run.objects.get()
    assert response.status_code == 302
    assert (run.mode, run.status, run.target.environment) == ("load", "succeeded", "prod")


def test_live_partial_polls_while_running_and_stops_with_286(client_for, viewer, demo_plan):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    run_prepare(run_id=run.pk)  # batches queued on the broker; no worker takes them
    client = client_for(viewer)
    url = reverse("runs:run_live", args=[run.uuid])
    running = client.get(url)
    assert running.status_code == 200 and b'hx-trigger="every 1500ms"' in running.content
    Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    ended = client.get(url)
    assert ended.status_code == 286 and b"hx-trigger" not in ended.content


def test_run_page_shows_progress_counts_batches_and_open_errors(
    client_for, viewer, demo_plan, eager_celery
):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    run.refresh_from_db()
    response = client_for(viewer).get(run.get_absolute_url())
    progress = response.context["progress"]
    assert progress.pct == 100
    assert [e.total for e in progress.entities] == [300, 600, 900]
    assert progress.open_errors == run.failed > 0
    assert response.content.count(b'class="status status-done"') == run.batches_total
    assert b"Pause" not in response.content  # viewer: no controls


def test_controls_refused_to_viewer_and_work_for_analyst(client_for, viewer, analyst, demo_plan):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    run_prepare(run_id=run.pk)
    pause = reverse("runs:run_pause", args=[run.uuid])
    refused = client_for(viewer).post(pause, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    assert b"only an analyst or an operator may pause" in refused.content
    client = client_for(analyst)
    paused = client.post(pause, HTTP_HX_REQUEST="true")
    assert paused.status_code == 200 and b"Resume" in paused.content
    again = client.post(pause, HTTP_HX_REQUEST="true")
    assert b"cannot be paused" in again.content
    client.post(reverse("runs:run_cancel", args=[run.uuid]), HTTP_HX_REQUEST="true")
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_reprocess_fixed_record_through_the_view_loads_once_and_closes(
    client_for, analyst, demo_plan, demo_target_db, eager_celery
):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    record = _single_error_record(run, "email")
    client = client_for(analyst)
    open_before = FailedRecord.objects.filter(run=run, status="open").count()
    response = client.post(
        reverse("runs:failed_record_correct", args=[record.uuid]),
        {"v:Email_Address": "fixed@example.com", "reprocess": "1"},
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.status == FailedRecordStatus.REPROCESSED
    assert FailedRecord.objects.filter(run=run, status="open").count() == open_before - 1
    assert pg.query(
        demo_target_db,
        "SELECT count(*) FROM accounts WHERE account_number = %s",
        (record.source_key,),
    ) == [(1,)]
    client.post(reverse("runs:queue_reprocess"), {"ids": [str(record.uuid)], "scope": "selected"})
    assert pg.query(
        demo_target_db,
        "SELECT count(*) FROM accounts WHERE account_number = %s",
        (record.source_key,),
    ) == [(1,)]


def test_viewer_cannot_work_the_queue(client_for, viewer, demo_plan, eager_celery):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    record = FailedRecord.objects.filter(run=run).first()
    client = client_for(viewer)
    ignore = client.post(
        reverse("runs:queue_ignore"),
        {"ids": [str(record.uuid)], "scope": "selected", "reason": "x"},
    )
    reprocess = client.post(
        reverse("runs:queue_reprocess"), {"ids": [str(record.uuid)], "scope": "selected"}
    )
    assert (ignore.status_code, reprocess.status_code) == (403, 403)
    record.refresh_from_db()
    assert record.status == "open"


def test_ignore_matching_filter_needs_reason_and_counts_go_down(
    client_for, analyst, demo_plan, eager_celery
):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    client = client_for(analyst)
    base = {"run": str(run.uuid), "scope": "filter", "entity": "orders", "status": "workable"}
    client.post(reverse("runs:queue_ignore"), base | {"reason": " "})
    assert FailedRecord.objects.filter(run=run, status="ignored").count() == 0
    orders = FailedRecord.objects.filter(run=run, entity="orders").count()
    client.post(reverse("runs:queue_ignore"), base | {"reason": "legacy test orders"})
    assert FailedRecord.objects.filter(run=run, status="ignored").count() == orders
    page = client.get(reverse("runs:queue", args=[run.uuid]))
    assert page.context["open_total"] == FailedRecord.objects.filter(run=run).count() - orders


def test_queue_page_filters_groups_top_errors_and_exports_csv(
    client_for, viewer, demo_plan, eager_celery
):
    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    client = client_for(viewer)
    page = client.get(reverse("runs:queue", args=[run.uuid]), {"entity": "accounts"})
    assert {r.entity for r in page.context["records"]} == {"accounts"}
    top = client.get(reverse("runs:queue_top", args=[run.uuid]), {"entity": "accounts"}).context[
        "top_errors"
    ]
    assert top[0]["n"] >= top[-1]["n"] and "'…'" in top[0]["pattern"]
    export = client.get(reverse("runs:queue_export", args=[run.uuid]), {"entity": "accounts"})
    lines = b"".join(export.streaming_content).decode().strip().splitlines()
    assert len(lines) - 1 == FailedRecord.objects.filter(run=run, entity="accounts").count()


def test_rollback_view_needs_operator_and_shows_verification(
    client_for, analyst, operator, demo_plan, eager_celery
):
    run = run_create(plan=demo_plan, user=None, mode="load")
    url = reverse("runs:rollback", args=[run.uuid])
    assert client_for(analyst).post(url, {"confirm": "on"}).status_code == 403
    client = client_for(operator)
    confirm = client.get(url)
    assert sum(e["inserted"] for e in confirm.context["entities"]) == Run.objects.get().inserted
    response = client.post(url, {"confirm": "on", "reason": "rehearsal over"})
    assert response.status_code == 302
    rollback = Rollback.objects.get(run=run)
    assert rollback.status == "verified"
    status = client.get(reverse("runs:rollback_status", args=[run.uuid]))
    assert status.status_code == 286
    assert [t["differs"] for t in status.context["tables"]] == [False, False, False]
    assert b"Verified" in status.content
