"""The report's expected side (source re-read through the run's rules) computed in a thread of
its own while the key diffs run: same figures as computed inline, the source untouched when no
post rule needs it, and an error there reported on the rules that need it (never a Pass)."""

from __future__ import annotations

import pandas as pd
import pytest

from runs.enums import RunStatus
from runs.services import run_create
from runs.services.state import run_entities
from tests.support import pg
from tests.support.validation_rules import validation_rule as _rule
from validation import reconciliation as rec
from validation.models import ValidationResult
from validation.prefetch import expected_collect, expected_start
from validation.reconciliation import expected as expected_side
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _load(plan):
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _statuses(run) -> dict[str, str]:
    return {
        r.rule.name: r.status
        for r in ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    }


def _connections(dbname: str) -> int:
    return pg.query(
        "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
    )[0][0]


def test_prefetched_expected_side_equals_the_inline_pass(
    eager_celery, demo_plan, demo_source_db, monkeypatch
):
    # small key ranges: the prefetch's threads (Reader.parallel) share many of them out
    monkeypatch.setattr(expected_side, "REPORT_CHUNK", 25)
    _rule(demo_plan, "orders sum", "sum_match", "orders", "total_amount")
    _rule(demo_plan, "seven", "sample_compare", "accounts", n=7, seed=3)
    run = _load(demo_plan)
    entities = run_entities(run)
    before = _connections(demo_source_db)
    threaded = rec.RunContext(run=run)
    threaded.pending = expected_start(threaded, entities)
    expected_collect(threaded)
    # the threads closed the connections they opened
    assert _connections(demo_source_db) == before
    inline = rec.RunContext(run=run)
    # accounts: row count, categories, samples; orders: the sum; contacts: references only
    assert set(threaded.expected) == {"accounts", "orders"}
    for entity in (e for e in entities if e.name in threaded.expected):
        got, want = threaded.expected[entity.name], rec.expected_aggregate(inline, entity)
        assert isinstance(got, rec.Expected)
        assert (got.rows, got.sums, got.counts) == (want.rows, want.sums, want.counts)
        assert got.samples.keys() == want.samples.keys()
        for key, frame in want.samples.items():
            pd.testing.assert_frame_equal(got.samples[key].frame(), frame.frame())
    assert threaded.expected["orders"].sums["total_amount"] > 0
    assert threaded.expected["accounts"].rows > 0


def test_report_reads_no_source_when_no_post_rule_needs_it(eager_celery, demo_plan, demo_target_db):
    run = _load(demo_plan)
    demo_plan.validation_rules.filter(phase="post").update(enabled=False)
    keep = [
        _rule(demo_plan, "hashes", "checksum", "accounts"),
        _rule(
            demo_plan,
            "parents",
            "referential_integrity",
            "contacts",
            "account_id",
            parent="accounts",
        ),
    ]
    source = demo_plan.source
    source.database = "mp_no_such_database"  # any read of the source would fail now
    source.save()
    run.refresh_from_db()
    assert expected_start(rec.RunContext(run=run), run_entities(run)) is None
    report = run_report_build(run=run)
    assert _statuses(run) == {r.name: "passed" for r in keep}
    assert report.verdict == "pass"
    # a rule that needs the source now: its check errors (reported), the verdict is not a pass
    _rule(demo_plan, "count", "row_count_match", "accounts")
    _rule(demo_plan, "mix", "category_count_match", "accounts", "account_status")
    report = run_report_build(run=run)
    statuses = _statuses(run)
    assert (statuses["count"], statuses["mix"]) == ("error", "error")
    assert report.verdict == "fail"
    error = ValidationResult.objects.get(run=run, rule__name="count").observed
    assert "mp_no_such_database" in error


def test_prefetched_sum_still_fails_on_a_wrong_target_value(
    eager_celery, demo_plan, demo_target_db
):
    run = _load(demo_plan)
    demo_plan.validation_rules.filter(phase="post").update(enabled=False)
    _rule(demo_plan, "orders sum", "sum_match", "orders", "total_amount")
    assert run_report_build(run=run).verdict == "pass"
    pg.query(
        demo_target_db,
        "UPDATE orders SET total_amount = total_amount + 0.01 "
        "WHERE id = (SELECT max(id) FROM orders)",
    )
    report = run_report_build(run=run)
    result = ValidationResult.objects.get(run=run, rule__name="orders sum")
    assert (result.status, result.details["difference"]) == ("failed", "0.01")
    assert report.verdict == "fail"
