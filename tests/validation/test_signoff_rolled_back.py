"""A sign-off keeps the verdict it froze after a rollback of its run (not voided, the gate is
unchanged), but wherever it is shown it says "run #N rolled back since (rollback #M by U at T)":
the sign-off page's history, the API, the cutover page, the plan document (HTML and Markdown).
Lists take one query for the rollbacks whatever the number of sign-offs. Real PostgreSQL, eager
Celery."""
# ruff: noqa: F811 -- fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.enums import RollbackStatus, RunStatus
from runs.models import Rollback, Run
from runs.services import run_rollback_request
from runs.services.launch import _signed_off
from runs.services.rollback import run_rollback_execute, run_rollback_stack_request
from tests.runs.conftest import eager_celery, sync_plan  # noqa: F401
from tests.support.runs import deltas_then_a_mismatch, run_finished
from validation.cutover import cutover_checklist, cutover_open
from validation.models import SignOff
from validation.signoff import signoff_decide
from validation.signoff_rollback import signoffs_rolled_back_since

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _approve(plan, run, approver) -> SignOff:
    return signoff_decide(
        plan=plan, version=run.version, run=run, user=approver, decision="approved"
    )


def _words(rollback: Rollback, run: Run, state: str = "rolled back since") -> str:
    at = rollback.started_at.strftime("%Y-%m-%d %H:%M")
    who = rollback.requested_by.username
    return f"run #{run.pk} {state} (rollback #{rollback.pk} by {who} at {at})"


def _signoff_page_queries(client, plan) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"/plans/{plan.slug}/signoff/")
    assert page.status_code == 200
    return len(queries), page.content.decode()


def _api_queries(client, plan) -> tuple[int, list[dict]]:
    with CaptureQueriesContext(connection) as queries:
        body = client.get(f"/api/signoffs/?plan={plan.slug}").json()
    return len(queries), body["results"]


def test_a_rolled_back_runs_signoff_keeps_its_pass_and_says_it_was_rolled_back_since(
    eager_celery, demo_plan, operator, approver, viewer, client_for
):
    first = run_finished(demo_plan, operator)
    signed = _approve(demo_plan, first, approver)
    assert signed.report_snapshot["verdict"] in ("pass", "warn")
    rollback = run_rollback_request(run=first, user=operator, enqueue=False)
    assert run_rollback_execute(rollback_id=rollback.pk).status == RollbackStatus.VERIFIED
    rollback.refresh_from_db()
    second = run_finished(demo_plan, operator)
    kept = _approve(demo_plan, second, approver)

    signed.refresh_from_db()
    assert signed.voided_at is None and signed.is_valid  # not voided: the gate is unchanged
    assert _signed_off(first.version)
    client = client_for(viewer)
    two_page, page = _signoff_page_queries(client, demo_plan)
    words = _words(rollback, first)
    assert words in page
    assert page.count("rolled back since") == 1  # the second run's sign-off has no note
    two_api, rows = _api_queries(client, demo_plan)
    by_uuid = {r["uuid"]: r for r in rows}
    note = by_uuid[str(signed.uuid)]["run_rolled_back_since"]
    assert note["text"] == words
    assert (note["run_id"], note["rollback_id"], note["state"]) == (
        first.pk,
        rollback.pk,
        "rolled_back",
    )
    assert (note["requested_by"], note["rollback_status"]) == (operator.username, "verified")
    assert by_uuid[str(signed.uuid)]["report_verdict"] == signed.report_snapshot["verdict"]
    assert by_uuid[str(kept.uuid)]["run_rolled_back_since"] is None
    one = client.get(f"/api/signoffs/{signed.uuid}/").json()
    assert one["run_rolled_back_since"]["text"] == words

    # a third sign-off whose run is being rolled back now: same number of queries
    third = run_finished(demo_plan, operator)
    _approve(demo_plan, third, approver)
    running = run_rollback_request(run=third, user=operator, enqueue=False)
    three_page, page = _signoff_page_queries(client, demo_plan)
    assert _words(running, third, "being rolled back since") in page
    three_api, rows = _api_queries(client, demo_plan)
    assert [r["run_rolled_back_since"]["state"] for r in rows if r["run_rolled_back_since"]] == [
        "rolling_back",
        "rolled_back",
    ]
    assert (three_page, three_api) == (two_page, two_api)

    document = client.get(f"/plans/{demo_plan.slug}/document/").content.decode()
    assert _words(running, third, "being rolled back since") in document
    markdown = client.get(f"/plans/{demo_plan.slug}/document/?format=md").content.decode()
    assert _words(running, third, "being rolled back since") in markdown
    cutover = cutover_open(plan=demo_plan, user=operator)
    item = next(c for c in cutover_checklist(cutover) if c.key == "signoff")
    assert _words(running, third, "being rolled back since") in item.detail
    page = client.get(f"/plans/{demo_plan.slug}/cutover/").content.decode()
    assert _words(running, third, "being rolled back since") in page


def test_a_signoff_made_after_the_rollback_has_no_note(eager_celery, demo_plan, operator, approver):
    run = run_finished(demo_plan, operator)
    before = _approve(demo_plan, run, approver)
    rollback = run_rollback_request(run=run, user=operator, enqueue=False)
    rejected = signoff_decide(
        plan=demo_plan,
        version=run.version,
        run=run,
        user=approver,
        decision="rejected",
        reason="its run is being rolled back",
    )
    notes = signoffs_rolled_back_since(
        SignOff.objects.select_related("run").filter(pk__in=[before.pk, rejected.pk])
    )
    assert set(notes) == {before.pk}
    assert notes[before.pk].rollback_id == rollback.pk


def test_a_chain_that_stopped_before_the_signed_run_says_its_report_was_superseded(
    sync_plan, eager_celery, operator, approver, viewer, client_for
):
    plan = sync_plan[0]
    approvals = []
    first, second = deltas_then_a_mismatch(
        *sync_plan,
        operator,
        after_first=lambda run: approvals.append(_approve(plan, run, approver)),
    )
    (signed,) = approvals

    run_rollback_stack_request(run=first, user=operator)

    head = Rollback.objects.get(run=second)
    assert head.status == RollbackStatus.MISMATCH
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED
    at = head.started_at.strftime("%Y-%m-%d %H:%M")
    words = (
        f"run #{first.pk} superseded since by a rollback chain (rollback #{head.pk} of run "
        f"#{second.pk} by {operator.username} at {at}, checksum mismatch)"
    )
    client = client_for(viewer)
    assert words in client.get(f"/plans/{plan.slug}/signoff/").content.decode()
    api = client.get(f"/api/signoffs/{signed.uuid}/").json()["run_rolled_back_since"]
    assert (api["state"], api["rollback_run_id"], api["text"]) == (
        "superseded",
        second.pk,
        words,
    )
