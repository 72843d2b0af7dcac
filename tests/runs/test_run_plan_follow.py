"""``run_plan --wait`` follows its run by polling the run's row: one narrow query per poll."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone

from mappings.models import PlanVersion
from runs.enums import RunStatus
from runs.management.commands._progress import follow
from runs.models import Run
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


def test_follow_reads_only_the_columns_it_shows_once_per_poll(django_assert_num_queries):
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        loaded=7,
        failed=2,
        source_total=9,
        pre_checksums={"accounts": {"rows": 0, "digest": "x" * 64}},
    )
    with django_assert_num_queries(1) as captured:
        followed = follow(run, stdout=io.StringIO(), poll=0)
    (query,) = [q["sql"] for q in captured.captured_queries]
    assert "pre_checksums" not in query
    assert "watermarks" not in query
    assert (followed.status, followed.loaded, followed.failed) == (RunStatus.SUCCEEDED, 7, 2)
