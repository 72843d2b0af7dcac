"""REVIEW9 J2-6: the all-runs error queue shows a failing source row once — the latest run's
record into that target — and names the target; older copies (which can no longer be
re-processed) are counted apart as superseded. Real PostgreSQL source/target, inline runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.enums import FailedRecordStatus, RunStatus
from runs.models import FailedRecord, Run
from runs.selectors import failed_record_filter
from runs.selectors.queue import OPEN_STATUSES
from runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _load(plan, mode="load") -> Run:
    run = run_create(plan=plan, user=None, mode=mode)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _change_account_rules(plan) -> None:
    """A rules change for accounts only: their rows go through the rules again (their failures
    are recorded anew), contacts' and orders' unchanged failures are carried (services.carry)."""
    from mappings.models import RuleStep

    step = RuleStep.objects.get(
        field__entity__plan=plan,
        field__entity__name="accounts",
        field__target_column="name",
        rule="title",
    )
    step.rule = "upper"
    step.save()


def test_a_later_run_supersedes_the_earlier_runs_open_record_of_the_same_row(
    eager_celery, demo_plan, viewer, client_for
):
    dry = _load(demo_plan, mode="dry_run")
    first = _load(demo_plan)
    _change_account_rules(demo_plan)
    second = _load(demo_plan)
    assert first.failed == second.failed > 0
    workable = (FailedRecordStatus.OPEN, FailedRecordStatus.FIXED)
    # one workable record per failing row: the latest run's; the first run's are carried into
    # it (unchanged rows and rules, services.carry) or superseded by it (recorded anew)
    # (read as the queue shows them: a batch carried whole is carried by reference)
    assert not failed_record_filter(run=first, status="workable").exists()
    assert workable == OPEN_STATUSES
    superseded = failed_record_filter(run=first, status="superseded").count()
    carried = failed_record_filter(run=first, status="carried").count()
    assert superseded > 0 and superseded + carried == first.failed
    assert failed_record_filter(run=second, status="open").count() == second.failed
    # a dry run's records are not superseded by loads (nor the other way round)
    assert FailedRecord.objects.filter(run=dry, status="open").count() == dry.failed
    record = failed_record_filter(run=first, status="superseded").order_by("id").first()
    page = client_for(viewer).get(reverse("runs:queue_all"), {"q": record.source_key})
    text = page.content.decode()
    rows = [r for r in text.split("<tr>") if f"<code>{record.source_key}</code>" in r]
    load_rows = [r for r in rows if f"run #{dry.pk} " not in r]
    assert len(load_rows) == 1 and f"run #{second.pk} " in load_rows[0]
    assert f"into {demo_plan.target.name}" in load_rows[0] and "env-uat" in load_rows[0]
    assert f'id="superseded-count">{superseded:,}<' in text
    older = client_for(viewer).get(
        reverse("runs:queue_all"), {"q": record.source_key, "status": "superseded"}
    )
    assert f"run #{first.pk} " in older.content.decode()
    assert "Superseded by a later run" in older.content.decode()


def test_rolling_back_the_later_run_opens_the_records_it_superseded_again(
    eager_celery, demo_plan, operator
):
    from runs.services import run_rollback_request

    first = _load(demo_plan)
    _change_account_rules(demo_plan)
    second = _load(demo_plan)
    superseded = set(
        FailedRecord.objects.filter(run=first, status="superseded").values_list("pk", flat=True)
    )
    assert superseded
    rollback = run_rollback_request(run=second, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == "verified"
    assert FailedRecord.objects.filter(run=first, status="open").count() == first.failed
    assert not FailedRecord.objects.filter(run=second, status__in=("open", "fixed")).exists()
