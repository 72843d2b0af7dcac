"""The target side of an entity's aggregate post checks (row count, sums, per-value counts)
asked in ONE statement over the rows the run answers for (a report asked one per rule: 7.9 s
each at 10 M rows), with the same outcomes; a rule the combined statement cannot answer (a
sum over a column that is not a number) errors alone, the others still decide."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from runs.enums import RunStatus
from runs.services import run_create
from runs.services.state import run_entities
from tests.support import pg
from tests.support.statements import Recorder
from tests.support.validation_rules import validation_rule
from validation import reconciliation as rec
from validation.models import ValidationResult
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _orders_rules(plan) -> None:
    plan.validation_rules.filter(phase="post").delete()
    validation_rule(plan, "count", "row_count_match", "orders", tolerance_pct=0.0)
    validation_rule(plan, "total", "sum_match", "orders", "total_amount", tolerance=0)
    validation_rule(plan, "statuses", "category_count_match", "orders", "status")
    validation_rule(plan, "currencies", "category_count_match", "orders", "currency")


def _run(plan):
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_aggregate_checks_of_an_entity_ask_the_target_once(eager_celery, demo_plan):
    _orders_rules(demo_plan)
    run = _run(demo_plan)
    ctx = rec.RunContext(run=run)
    texts: list = []
    real = ctx.cursor

    @contextmanager
    def recording():
        with real() as cur:
            yield Recorder(cur, texts)

    ctx.cursor = recording
    orders = next(e for e in run_entities(run) if e.name == "orders")
    outcomes = {
        r.name: rec.post_check(
            ctx, kind=r.kind, params=r.params, column=r.column, entity=orders, diffs={}
        )
        for r in demo_plan.validation_rules.filter(phase="post").order_by("name")
    }
    ctx.close()
    assert {n: o.ok for n, o in outcomes.items()} == dict.fromkeys(
        ("count", "currencies", "statuses", "total"), True
    )
    assert sum("mp_ledger.covered" in t for t in texts) == 1
    loaded = sum(b.loaded for b in run.batches.filter(entity="orders"))
    assert outcomes["count"].observed == f"{loaded:,}"


def test_a_sum_the_target_cannot_add_errors_alone(eager_celery, demo_plan, demo_target_db):
    _orders_rules(demo_plan)
    validation_rule(demo_plan, "bad sum", "sum_match", "orders", "status", tolerance=0)
    run = _run(demo_plan)
    statuses = {
        r.rule.name: r.status
        for r in ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    }
    assert statuses == {
        "count": "passed",
        "total": "passed",
        "statuses": "passed",
        "currencies": "passed",
        "bad sum": "error",
    }
    # and a changed amount still fails the sum, a changed status the per-value counts
    pg.query(
        demo_target_db,
        "UPDATE orders SET total_amount = total_amount + 1, status = 'Tampered' "
        "WHERE id = (SELECT min(id) FROM orders)",
    )
    run_report_build(run=run)
    after = {
        r.rule.name: r.status
        for r in ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    }
    assert (after["total"], after["statuses"], after["count"]) == ("failed", "failed", "passed")


def test_the_target_aggregates_are_asked_before_a_check_waits_for_the_expected_side(
    eager_celery, demo_plan, demo_target_db, monkeypatch
):
    """A sample rule checked first (rules go by name) waited for the expected side, and the
    entity's aggregate statement then ran on the report's tail (11.6 s at 10 M rows): it is
    asked before that wait now, once, with the same verdicts — and a tampered status still
    fails the per-value counts."""
    from validation.reconciliation import checks

    _orders_rules(demo_plan)
    validation_rule(demo_plan, "a sample", "sample_compare", "orders", pct=100.0)
    run = _run(demo_plan)
    order: list[str] = []
    real_aggregates, real_expected = checks.pg_run_aggregates, checks.expected_aggregate

    def aggregates(*args, **kwargs):
        order.append("aggregates")
        return real_aggregates(*args, **kwargs)

    def expected(*args, **kwargs):
        order.append("expected")
        return real_expected(*args, **kwargs)

    monkeypatch.setattr(checks, "pg_run_aggregates", aggregates)
    monkeypatch.setattr(checks, "expected_aggregate", expected)
    report = run_report_build(run=run)
    assert order[0] == "aggregates" and order.count("aggregates") == 1
    assert "expected" in order and report.verdict == "pass"
    pg.query(
        demo_target_db,
        "UPDATE orders SET status = 'Tampered' WHERE id = (SELECT min(id) FROM orders)",
    )
    run_report_build(run=run)
    after = {
        r.rule.name: r.status
        for r in ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    }
    assert (after["statuses"], after["a sample"], after["count"]) == ("failed", "failed", "passed")
