"""Runs in-process against real PostgreSQL: pause, resume and cancel, a batch that keeps killing
workers, the production gate and roles, the CLI, and the before/after-run hooks."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.enums import BatchStatus, RunStatus
from runs.models import Batch, Run
from runs.services import (
    batch_execute,
    run_cancel,
    run_create,
    run_pause,
    run_resume,
    run_rollback_request,
)
from tests.runs.inline_runs import checksums, count, launch

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_pause_resume_cancel(demo_plan):
    from runs.services import run_prepare

    run = run_create(plan=demo_plan, user=None, mode="dry_run")
    run_prepare(run_id=run.pk)  # batches queued to the broker; no worker consumes them
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.batches_total > 0
    run_pause(run=run, user=None)
    first = Batch.objects.filter(run=run).order_by("seq").first()
    assert batch_execute(batch_id=first.pk) == "paused"
    assert Batch.objects.get(pk=first.pk).status == BatchStatus.PENDING
    run_resume(run=run, user=None)
    assert batch_execute(batch_id=first.pk) == "done"
    run_cancel(run=run, user=None)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert set(Batch.objects.filter(run=run).values_list("status", flat=True)) == {
        "done",
        "cancelled",
    }
    with pytest.raises(ApplicationError):
        run_resume(run=run, user=None)


def test_batch_that_keeps_killing_workers_is_parked(demo_plan):
    from django.utils import timezone

    from runs.services import run_prepare

    run = run_create(plan=demo_plan, user=None, mode="dry_run", scope_entity="accounts")
    run_prepare(run_id=run.pk)
    batches = list(Batch.objects.filter(run=run).order_by("seq"))
    # two attempts lost their worker before; the third (running, lease expired) is taken over
    Batch.objects.filter(pk=batches[0].pk).update(
        status="running",
        attempts=3,
        lost_attempts=2,
        lease_until=timezone.now() - timezone.timedelta(seconds=1),
    )
    assert batch_execute(batch_id=batches[0].pk) == "parked"
    assert Batch.objects.get(pk=batches[0].pk).lost_attempts == 3
    for batch in batches[1:]:
        batch_execute(batch_id=batch.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Accounting does not balance" in run.error and "parked" in run.error


def test_production_target_needs_operator_and_sign_off(demo_plan, analyst, operator, approver):
    from mappings.services import plan_version_create
    from validation.models import SignOff

    demo_plan.target.environment = "prod"
    demo_plan.target.save()
    with pytest.raises(PermissionDeniedError):
        run_create(plan=demo_plan, user=analyst, mode="load")
    with pytest.raises(ApplicationError, match="must be signed off") as refused:
        run_create(plan=demo_plan, user=operator, mode="load")
    assert refused.value.extra["signoff_required"] is True
    assert not demo_plan.versions.exists()  # the refused launch froze nothing
    version = plan_version_create(plan=demo_plan, user=analyst)
    SignOff.objects.create(plan=demo_plan, version=version, approver=approver, decision="approved")
    run = run_create(plan=demo_plan, user=operator, mode="load")
    assert run.version == version
    assert run_create(plan=demo_plan, user=analyst, mode="dry_run").status == "queued"


def test_viewer_cannot_launch_or_roll_back(demo_plan, viewer):
    with pytest.raises(PermissionDeniedError):
        run_create(plan=demo_plan, user=viewer, mode="dry_run")
    run = run_create(plan=demo_plan, user=None, mode="load")
    with pytest.raises(PermissionDeniedError):
        run_rollback_request(run=run, user=viewer)


def test_cli_run_plan_and_rollback_run(demo_plan, demo_target_db, capsys):
    from celery import current_app

    before = current_app.conf.task_always_eager, current_app.conf.task_eager_propagates
    call_command("run_plan", demo_plan.slug, "--inline")
    # --inline runs eagerly for its own run only: later tests in this process use the workers
    assert (current_app.conf.task_always_eager, current_app.conf.task_eager_propagates) == before
    run = Run.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    assert "Succeeded: extracted 1,800" in capsys.readouterr().out
    call_command("rollback_run", str(run.uuid), "--inline")
    assert "Verified" in capsys.readouterr().out
    assert count(demo_target_db, "accounts") == 0


def test_before_run_hook_stops_run_before_writing(eager_celery, demo_plan):
    from runs.services import hooks

    def refuse(run):
        return "source has 3 duplicate Customer_ID values (blocking pre-validation)"

    ended = []
    hooks.register_before_run(refuse)
    hooks.register_after_run(ended.append)
    try:
        before = checksums(demo_plan)
        run = launch(demo_plan)
    finally:
        hooks.BEFORE_RUN.remove(refuse)
        hooks.AFTER_RUN.remove(ended.append)
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("Stopped before writing anything: source has 3 duplicate")
    assert not Batch.objects.filter(run=run).exists()
    assert checksums(demo_plan) == before
    assert [r.pk for r in ended] == [run.pk]


def test_after_run_hook_sees_each_end_state(eager_celery, demo_plan):
    from runs.services import hooks

    seen = []

    def record(run):
        seen.append(run.status)

    hooks.register_after_run(record)
    try:
        run = launch(demo_plan)
        run_rollback_request(run=run, user=None)
    finally:
        hooks.AFTER_RUN.remove(record)
    assert seen == ["succeeded", "rolled_back"]
