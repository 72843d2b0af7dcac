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


@pytest.fixture
def registered_check():
    """Register a system check for one test (``registered_check(fn, tag)``), removed after."""
    from django.core.checks.registry import registry

    added = []

    def register(fn, tag: str):
        registry.register(fn, tag)
        added.append(fn)
        return fn

    yield register
    for fn in added:
        registry.registered_checks.discard(fn)


@pytest.mark.parametrize("command", ["run_plan", "rollback_run"])
def test_run_commands_check_everything_but_the_web_front(command):
    """The URL conf's check imports every view and API module (most of the command's start);
    a run command skips it and the templates' check, and runs every other tag."""
    from django.core.checks import Tags
    from django.core.management import load_command_class

    tags = load_command_class("runs", command).requires_system_checks
    assert Tags.urls not in tags and Tags.templates not in tags
    assert {Tags.models, Tags.database, Tags.caches, Tags.security} <= set(tags)


def test_run_plan_still_stops_on_a_failing_system_check(registered_check):
    from django.core.checks import Error, Tags
    from django.core.management import call_command
    from django.core.management.base import CommandError, SystemCheckError

    def broken_model(**_):
        return [Error("a model is broken", id="test.E001")]

    def broken_url(**_):
        return [Error("a URL is broken", id="test.E002")]

    registered_check(broken_url, Tags.urls)
    # the web front's check is not run: the command goes on to its own refusal
    with pytest.raises(CommandError, match="No plan with slug"):
        call_command("run_plan", "no-such-plan", skip_checks=False, stdout=io.StringIO())
    registered_check(broken_model, Tags.models)
    with pytest.raises(SystemCheckError, match="a model is broken"):
        call_command("run_plan", "no-such-plan", skip_checks=False, stdout=io.StringIO())
