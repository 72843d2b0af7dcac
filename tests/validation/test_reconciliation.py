"""Post-migration reconciliation on the demo through real load runs (eager Celery)."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from runs.enums import RunStatus
from runs.models import Run
from runs.services import run_create
from tests.support import pg
from validation.models import RunReport, ValidationResult
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _load(plan) -> Run:
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _checks(run) -> dict[str, ValidationResult]:
    return {
        r.rule.kind + ":" + r.rule.entity: r
        for r in ValidationResult.objects.filter(run=run).select_related("rule")
    }


def test_load_run_report_passes_through_the_mapping(eager_celery, demo_plan):
    run = _load(demo_plan)
    report = RunReport.objects.get(run=run)
    checks = _checks(run)
    assert {k: r.status for k, r in checks.items() if r.rule.phase == "post"} == {
        "row_count_match:accounts": "passed",
        "category_count_match:accounts": "passed",
        "sum_match:orders": "passed",
        "referential_integrity:contacts": "passed",
        "sample_compare:accounts": "passed",
        "checksum:accounts": "passed",
    }
    assert report.verdict == "pass"
    categories = checks["category_count_match:accounts"].details["categories"]
    assert {c["category"] for c in categories} <= {"Active", "Inactive"}
    assert all(a["balanced"] for a in report.data["accounting"])
    assert all(d["clean"] for d in report.data["key_diffs"].values())


def test_reconciliation_finds_changed_deleted_and_added_rows(
    eager_celery, demo_plan, demo_target_db
):
    run = _load(demo_plan)
    ids = [r[0] for r in pg.query(demo_target_db, "SELECT id FROM accounts ORDER BY id")]
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Tampered' WHERE id = %s", (ids[3],))
    pg.query(demo_target_db, "DELETE FROM contacts WHERE account_id = %s", (ids[10],))
    pg.query(demo_target_db, "DELETE FROM accounts WHERE id = %s", (ids[10],))
    pg.query(
        demo_target_db,
        "INSERT INTO accounts (id, account_number, name, account_status) "
        "VALUES (%s, 'X-1', 'Intruder', 'Active')",
        (ids[-1] + 5,),
    )
    report = run_report_build(run=run)
    diff = report.data["key_diffs"]["accounts"]
    assert (diff["changed_keys"], diff["missing_keys"], diff["extra_keys"]) == (
        [str(ids[3])],
        [str(ids[10])],
        [str(ids[-1] + 5)],
    )
    assert report.verdict == "fail"
    assert _checks(run)["checksum:accounts"].status == "failed"
    assert _checks(run)["row_count_match:accounts"].observed == f"{len(ids) - 1:,}"


def test_report_reads_the_source_in_batches_and_samples_deterministically(eager_celery, demo_plan):
    from validation.models import ValidationRule

    demo_plan.batch_size = 97  # many chunks: the aggregates must add up across them
    demo_plan.save()
    ValidationRule.objects.create(
        plan=demo_plan,
        name="seven rows",
        phase="post",
        kind="sample_compare",
        entity="accounts",
        params={"n": 7, "seed": 3},
        severity="warning",
    )
    run = _load(demo_plan)
    loaded = run.batches.filter(entity="accounts").aggregate(n=Sum("loaded"))["n"]
    assert run.batches.filter(entity="accounts").count() > 3
    results = {r.rule.name: r for r in ValidationResult.objects.filter(run=run)}
    count = next(r for r in results.values() if r.rule.kind == "row_count_match")
    assert count.status == "passed" and count.expected.startswith(f"{loaded:,} ")
    assert results["seven rows"].status == "passed"
    assert results["seven rows"].details["sampled"] == 7
    five_pct = next(r for r in results.values() if r.rule.params == {"pct": 5.0})
    assert 0 < five_pct.details["sampled"] < loaded * 0.15
    again = run_report_build(run=run)
    assert again.verdict == "pass"
    rebuilt = {
        r.rule.name: r.details
        for r in ValidationResult.objects.filter(run=run).order_by("id")
        if r.rule.kind == "sample_compare"
    }
    assert rebuilt["seven rows"] == results["seven rows"].details


def test_sample_compare_in_small_rounds_finds_a_tampered_row(
    eager_celery, demo_plan, demo_target_db, monkeypatch
):
    from validation.models import ValidationRule
    from validation.reconciliation import checks

    ValidationRule.objects.create(
        plan=demo_plan,
        name="every row",
        phase="post",
        kind="sample_compare",
        entity="accounts",
        params={"pct": 100.0, "seed": 1},
        severity="warning",
    )
    run = _load(demo_plan)
    first = pg.query(demo_target_db, "SELECT min(id) FROM accounts")[0][0]
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Tampered' WHERE id = %s", (first,))
    monkeypatch.setattr(checks, "SAMPLE_CHUNK", 3)
    run_report_build(run=run)
    result = ValidationResult.objects.filter(run=run, rule__name="every row").latest("id")
    loaded = pg.query(demo_target_db, "SELECT count(*) FROM accounts")[0][0]
    assert result.status == "warning"  # a warning rule that does not pass
    assert result.observed == "1 rows differ (1 fields)"
    assert result.details["sampled"] == loaded
    assert result.details["differences"][0]["key"] == str(first)
    number = pg.query(
        demo_target_db, "SELECT account_number FROM accounts WHERE id = %s", (first,)
    )[0][0]
    # the business key (the legacy customer id the account number carries) beside the id
    assert result.details["differences"][0]["business_key"] == number


def _latest(run) -> dict[str, ValidationResult]:
    """The newest result of each check (a report built again adds results)."""
    return {
        r.rule.kind + ":" + r.rule.entity: r
        for r in ValidationResult.objects.filter(run=run).select_related("rule").order_by("id")
    }


def _post(run) -> dict[str, tuple[str, str, str]]:
    return {
        k: (r.status, r.expected, r.observed)
        for k, r in _latest(run).items()
        if r.rule.phase == "post" and not k.startswith("referential")
    }


def test_rerun_that_skips_unchanged_rows_reports_every_row_it_answers_for(
    eager_celery, demo_plan, demo_target_db
):
    """A re-run writes nothing it finds unchanged (accounts: skipped unread by the ledger's
    source hashes; contacts/orders: compared and not written), yet its scope is every row it
    answers for: the post checks show the same figures as the first run's, and Pass."""
    first = _load(demo_plan)
    (order_id,) = pg.query(demo_target_db, "SELECT min(id) FROM orders")[0]
    amount = "SELECT total_amount FROM orders WHERE id = %s"
    intended = pg.query(demo_target_db, amount, (order_id,))
    pg.query(
        demo_target_db,
        "UPDATE orders SET total_amount = total_amount + 1000 WHERE id = %s",
        (order_id,),
    )  # changed between the runs: the re-run writes it back
    again = _load(demo_plan)
    assert (again.inserted, again.updated, again.loaded) == (0, 1, first.loaded)
    assert pg.query(demo_target_db, amount, (order_id,)) == intended
    assert _post(again) == _post(first)
    assert {status for status, _, _ in _post(again).values()} == {"passed"}
    loaded = again.batches.filter(entity="accounts").aggregate(n=Sum("loaded"))["n"]
    assert _latest(again)["row_count_match:accounts"].observed == f"{loaded:,}"
    assert RunReport.objects.get(run=again).verdict == "pass"


def test_rerun_report_still_catches_a_skipped_row_changed_afterwards(
    eager_celery, demo_plan, demo_target_db
):
    _load(demo_plan)
    again = _load(demo_plan)
    assert (again.inserted, again.updated) == (0, 0)  # every row skipped or unchanged
    (account_id,) = pg.query(
        demo_target_db, "SELECT min(id) FROM accounts WHERE account_status = 'Active'"
    )[0]
    pg.query(
        demo_target_db,
        "UPDATE accounts SET account_status = 'Inactive' WHERE id = %s",
        (account_id,),
    )
    pg.query(
        demo_target_db,
        "UPDATE orders SET total_amount = total_amount + 7 WHERE id = (SELECT min(id) FROM orders)",
    )
    report = run_report_build(run=again)
    checks = _latest(again)
    assert checks["category_count_match:accounts"].status == "failed"
    assert checks["sum_match:orders"].status == "failed"
    assert checks["checksum:accounts"].status == "failed"
    assert report.data["key_diffs"]["accounts"]["changed_keys"] == [str(account_id)]
    assert report.verdict == "fail"


def test_large_sample_is_held_a_block_at_a_time_and_still_finds_a_tampered_row(
    eager_celery, demo_plan, demo_target_db, monkeypatch
):
    """Issue 20: a 10 M run's 5 % sample (~417,000 rows) was held in memory up to three times;
    now it goes to disk in blocks. A 100 % sample over many blocks still finds one changed row."""
    from tests.support.validation_rules import validation_rule
    from validation import reconciliation as rec
    from validation.reconciliation import expected, sample

    validation_rule(demo_plan, "every row", "sample_compare", "accounts", pct=100.0, seed=1)
    run = _load(demo_plan)
    monkeypatch.setattr(expected, "REPORT_CHUNK", 25)
    monkeypatch.setattr(sample, "SPILL_ROWS", 7)
    loaded = pg.query(demo_target_db, "SELECT count(*) FROM accounts")[0][0]
    ctx = rec.RunContext(run=run)
    rows = rec.expected_aggregate(ctx, ctx.snapshot.entity("accounts")).samples[(100.0, None, 1)]
    assert len(rows) == loaded > 4 * 25
    assert rows.peak_held < 7 + 25  # a block and the chunk that filled it, not the sample
    ctx.close()

    middle = pg.query(demo_target_db, "SELECT id FROM accounts ORDER BY id")[loaded // 2][0]
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Tampered' WHERE id = %s", (middle,))
    report = run_report_build(run=run)
    result = ValidationResult.objects.filter(run=run, rule__name="every row").latest("id")
    assert (result.status, result.details["sampled"]) == ("failed", loaded)
    assert [(d["key"], d["field"]) for d in result.details["differences"]] == [
        (str(middle), "name")
    ]
    assert report.verdict == "fail"


def test_failed_rows_dropped_before_the_transform_leave_the_expected_side_unchanged(
    eager_celery, demo_plan, demo_target_db, monkeypatch
):
    """Issue 20: the report leaves the run's failed rows out before putting the source through
    the rules (rows transform independently), not after: the same rows, sums, counts and
    samples as transforming every row and dropping the failed ones afterwards."""
    from tests.support.validation_rules import validation_rule
    from validation import reconciliation as rec
    from validation.reconciliation import expected

    validation_rule(demo_plan, "all", "sample_compare", "accounts", pct=100.0, seed=2)
    validation_rule(demo_plan, "seven", "sample_compare", "accounts", n=7, seed=3)
    validation_rule(demo_plan, "orders sum", "sum_match", "orders", "total_amount")
    run = _load(demo_plan)
    assert run.batches.filter(entity="accounts").aggregate(n=Sum("failed"))["n"] > 0
    monkeypatch.setattr(expected, "REPORT_CHUNK", 40)
    got: dict[bool, dict] = {}
    for early in (True, False):
        monkeypatch.setattr(expected, "DROP_FAILED_FIRST", early)
        ctx = rec.RunContext(run=run)
        got[early] = {}
        for name in ("accounts", "orders"):
            out = rec.expected_aggregate(ctx, ctx.snapshot.entity(name))
            samples = {k: v.frame().to_dict("index") for k, v in out.samples.items()}
            got[early][name] = (out.rows, out.sums, out.counts, samples)
        ctx.close()
    assert got[True] == got[False]
    assert got[True]["accounts"][0] > 0
