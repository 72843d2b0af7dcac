"""REVIEW9 J2-5: the reviewer's sequence — the demo plan loaded, then loaded again from the
unchanged source — must report Pass with the counts the run meant to write (rows it proved
unchanged included), and must not raise a red "reconciliation FAILED" alert. On the SQLite
target the demo uses by default and on PostgreSQL; inline (eager) runs, counts only."""

from __future__ import annotations

import pytest

from runs.enums import RunStatus
from runs.models import Notification, Run
from runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _load(plan) -> Run:
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _post_checks(run: Run) -> dict[tuple[str, str], tuple[str, str, str]]:
    from validation.models import ValidationResult

    results = ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    return {(r.rule.name, r.rule.kind): (r.status, r.expected, r.observed) for r in results}


def _assert_idempotent_reload_passes(plan, operator) -> None:
    from validation.models import RunReport

    first = _load(plan)
    again = _load(plan)
    assert (again.inserted, again.updated) == (0, 0)
    assert again.unchanged == again.loaded == first.loaded > 0
    assert again.failed == first.failed > 0  # the demo's dirty rows fail again, as the reviewer's
    checks = _post_checks(again)
    assert checks and checks == _post_checks(first)
    assert all(status == "passed" for status, _, _ in checks.values()), checks
    counts = [v for (_, kind), v in checks.items() if kind == "row_count_match"]
    assert counts and all(obs.replace(",", "") != "0" for _, _, obs in counts)
    report = RunReport.objects.get(run=again)
    assert report.verdict == "pass"
    diff = report.data["key_diffs"]["accounts"]
    assert (diff["clean"], diff["missing"], diff["changed"]) == (True, 0, 0)
    notes = list(
        Notification.objects.filter(user=operator, run=again).values_list("level", "message")
    )
    assert notes and all("FAILED" not in message and level != "error" for level, message in notes)


def test_reloading_the_unchanged_demo_into_sqlite_reports_pass(
    eager_celery, sqlite_demo_plan, operator
):
    plan, _, _ = sqlite_demo_plan
    _assert_idempotent_reload_passes(plan, operator)


def test_reloading_the_unchanged_demo_into_postgres_reports_pass(eager_celery, demo_plan, operator):
    _assert_idempotent_reload_passes(demo_plan, operator)
