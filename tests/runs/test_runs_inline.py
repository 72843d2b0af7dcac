"""Runs executed in-process (eager Celery) against real PostgreSQL source and target: dry runs,
loads, rollbacks, deltas, the threshold, re-processing. Run control, roles, CLI and hooks:
test_runs_control.py."""

from __future__ import annotations

import pytest
from django.db.models import Count

from migration_planner.lib.errors import ApplicationError
from runs.enums import BatchStatus, RunStatus
from runs.models import Batch, FailedRecord, Rollback
from runs.services import failed_record_correct, failed_record_reprocess, run_rollback_request
from tests.runs.inline_runs import TABLES, checksums, count, launch
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _single_error_record(run, field: str) -> FailedRecord:
    records = FailedRecord.objects.filter(run=run, entity="accounts", field=field)
    return next(r for r in records if len(r.errors) == 1)


def test_dry_run_writes_nothing_and_fills_the_queue(
    eager_celery, demo_plan, demo_target_db, client_for, viewer
):
    demo_plan.failure_threshold_pct = 1  # a load would abort; the dry run goes on and says so
    demo_plan.save()
    before = checksums(demo_plan)
    run = launch(demo_plan, mode="dry_run")
    assert run.status == RunStatus.SUCCEEDED, run.error
    _assert_would_abort(run, client_for(viewer))
    assert checksums(demo_plan) == before
    assert pg.query(
        demo_target_db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'mp_ledger'"
    ) == [(0,)]
    assert run.extracted == 1800
    assert run.failed == FailedRecord.objects.filter(run=run).count() > 0
    assert run.loaded + run.failed + run.filtered + run.duplicates == run.extracted


def test_dry_run_under_the_threshold_says_a_load_would_go_through(
    eager_celery, demo_plan, client_for, viewer
):
    demo_plan.failure_threshold_pct = 99
    demo_plan.save()
    run = launch(demo_plan, mode="dry_run")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert 0 < run.failed < run.extracted
    text = (
        f"A load would have gone through: failure rate {run.failed * 100 / run.extracted:.1f}% "
        f"≤ threshold 99%"
    )
    client = client_for(viewer)
    api = client.get(f"/api/runs/{run.uuid}/").json()
    assert api["would_abort"] is None
    assert api["would_go_through"]["message"].startswith(text)
    report = client.get(f"/api/run-reports/{run.uuid}/").json()["data"]
    assert report["dry_run"]["threshold_breach"] is None
    assert report["dry_run"]["threshold_clear"]["message"].startswith(text)
    state = report["computed"]["state"]
    open_failures = FailedRecord.objects.filter(run=run, status="open").count()
    assert state == {
        "status": "succeeded",
        "loaded": run.loaded,
        "failed": run.failed,
        "batches": run.batches.count(),
        "open_failures": open_failures,
    }
    assert text in client.get(f"/runs/{run.uuid}/").content.decode()
    page = client.get(f"/runs/{run.uuid}/report/").content.decode()
    assert text in page
    assert (
        f"from: run succeeded, {state['batches']} batches, {run.loaded} loaded, "
        f"{run.failed} failed, {open_failures} failed records open"
    ) in page
    computed = page.split('id="report-computed"')[1].split("</small>")[0]
    assert " ms" not in computed and "not reconciled" in computed


def test_load_run_balances_and_target_holds_loaded_rows(eager_celery, demo_plan, demo_target_db):
    run = launch(demo_plan)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.entity_totals == {"accounts": 300, "contacts": 600, "orders": 900}
    loaded = sum(count(demo_target_db, t) for t in TABLES)
    assert loaded == run.loaded == run.inserted
    for entity in ("accounts", "contacts", "orders"):
        batches = Batch.objects.filter(run=run, entity=entity)
        accounted = sum(b.loaded + b.failed + b.filtered + b.duplicates for b in batches)
        assert accounted == run.entity_totals[entity]
    categories = dict(
        FailedRecord.objects.filter(run=run).values_list("category").annotate(n=Count("id"))
    )
    assert {"invalid_format", "lookup_miss", "reference_missing"} <= set(categories)


def test_failed_record_carries_readable_context(eager_celery, demo_plan):
    run = launch(demo_plan)
    record = FailedRecord.objects.filter(run=run, entity="accounts", field="email").first()
    assert record.stage == "transform" and record.rule == "email"
    assert "e-mail" in record.message
    assert record.source_row["Customer_ID"] == record.source_key
    assert "name" in record.transformed_row


def test_rollback_restores_pre_run_checksums(eager_celery, demo_plan, demo_target_db):
    before = checksums(demo_plan)
    run = launch(demo_plan)
    assert count(demo_target_db, "accounts") > 0
    rollback = run_rollback_request(run=run, user=None)
    rollback.refresh_from_db()
    run.refresh_from_db()
    assert (rollback.status, run.status) == ("verified", RunStatus.ROLLED_BACK)
    assert checksums(demo_plan) == before
    assert rollback.rows_deleted == run.loaded
    assert pg.query(demo_target_db, "SELECT count(*) FROM mp_ledger.keymap") == [(0,)]


def test_rollback_after_an_upsert_run_restores_overwritten_rows(
    eager_celery, demo_plan, demo_target_db
):
    first = launch(demo_plan)
    pg.query(demo_target_db, "UPDATE accounts SET name = 'Changed by hand' WHERE id % 7 = 0")
    before = checksums(demo_plan)
    second = launch(demo_plan)
    assert second.updated > 0 and second.inserted == 0
    assert pg.query(
        demo_target_db, "SELECT count(*) FROM accounts WHERE name = 'Changed by hand'"
    ) == [(0,)]
    run_rollback_request(run=second, user=None)
    assert checksums(demo_plan) == before
    assert first.status == RunStatus.SUCCEEDED


def test_delta_run_moves_only_changed_rows(eager_celery, demo_plan, demo_source_db, demo_target_db):
    full = launch(demo_plan)
    assert full.status == RunStatus.SUCCEEDED
    ids = [
        r[0]
        for r in pg.query(demo_target_db, "SELECT account_number FROM accounts ORDER BY id LIMIT 3")
    ]
    original = pg.query(  # the source is shared by the session: put these rows back exactly
        demo_source_db,
        'SELECT "Customer_ID", "Cust_Name", "Last_Modified" FROM customers '
        'WHERE "Customer_ID"::text = ANY(%s)',
        (ids,),
    )
    pg.query(
        demo_source_db,
        "UPDATE customers SET \"Cust_Name\" = 'delta corp', "
        '"Last_Modified" = now() + interval \'1 day\' WHERE "Customer_ID"::text = ANY(%s)',
        (ids,),
    )
    try:
        delta = launch(demo_plan, mode="delta", scope_entity="accounts")
        assert delta.status == RunStatus.SUCCEEDED, delta.error
        assert (delta.extracted, delta.updated, delta.inserted) == (3, 3, 0)
        assert pg.query(
            demo_target_db, "SELECT count(*) FROM accounts WHERE name = 'Delta Corp'"
        ) == [(3,)]
    finally:
        for key, name, modified in original:
            pg.query(
                demo_source_db,
                'UPDATE customers SET "Cust_Name" = %s, "Last_Modified" = %s '
                'WHERE "Customer_ID" = %s',
                (name, modified, key),
            )


def _assert_would_abort(run, client) -> None:
    """The run page, the report page and the API name the batch where a load would abort."""
    done = list(
        run.batches.filter(status=BatchStatus.DONE)
        .order_by("finished_at", "seq")
        .values_list("seq", "extracted", "failed")
    )
    totals = [
        (sum(d[1] for d in done[: i + 1]), sum(d[2] for d in done[: i + 1]))
        for i in range(len(done))
    ]
    first = next(i for i, (ext, bad) in enumerate(totals) if ext and bad * 100 / ext > 1)
    extracted, failed = totals[first]
    text = (
        f"A load would have aborted at batch {done[first][0]}: failure rate "
        f"{failed * 100 / extracted:.1f}% &gt; threshold 1%"
    )
    api = client.get(f"/api/runs/{run.uuid}/").json()["would_abort"]
    assert (api["batch"], api["failed"], api["extracted"], api["threshold_pct"]) == (
        done[first][0],
        failed,
        extracted,
        1.0,
    )
    assert api["message"].startswith(text.replace("&gt;", ">"))
    assert text in client.get(f"/runs/{run.uuid}/").content.decode()
    assert text in client.get(f"/runs/{run.uuid}/report/").content.decode()


def test_failure_threshold_fails_and_rolls_back(eager_celery, demo_plan):
    demo_plan.failure_threshold_pct = 1
    demo_plan.rollback_on_threshold = True
    demo_plan.save()
    before = checksums(demo_plan)
    run = launch(demo_plan)
    assert run.status == RunStatus.ROLLED_BACK
    assert "Failure threshold passed" in run.error
    assert Rollback.objects.get(run=run).status == "verified"
    assert checksums(demo_plan) == before


def test_reprocess_fixed_record_loads_exactly_once(eager_celery, demo_plan, demo_target_db):
    run = launch(demo_plan)
    record = _single_error_record(run, "email")
    failed_before = run.failed
    failed_record_correct(record=record, user=None, values={"Email_Address": "fixed@example.com"})
    result = failed_record_reprocess(records=FailedRecord.objects.filter(pk=record.pk), user=None)
    assert (result.fixed, result.still_failing) == (1, 0)
    record.refresh_from_db()
    run.refresh_from_db()
    assert record.status == "reprocessed"
    assert run.failed == failed_before - 1
    assert pg.query(
        demo_target_db,
        "SELECT count(*), max(email) FROM accounts WHERE account_number = %s",
        (record.source_key,),
    ) == [(1, "fixed@example.com")]
    with pytest.raises(ApplicationError):
        failed_record_reprocess(records=FailedRecord.objects.filter(pk=record.pk), user=None)
    run_rollback_request(run=run, user=None)
    assert count(demo_target_db, "accounts") == 0


def test_reprocess_still_failing_keeps_record_open(eager_celery, demo_plan):
    run = launch(demo_plan)
    record = _single_error_record(run, "email")
    failed_record_correct(record=record, user=None, values={"Email_Address": "still-bad"})
    result = failed_record_reprocess(records=FailedRecord.objects.filter(pk=record.pk), user=None)
    record.refresh_from_db()
    assert (result.fixed, record.status) == (0, "fixed")
    assert "still-bad" in record.message


def test_correct_rejects_unknown_column(eager_celery, demo_plan):
    run = launch(demo_plan, mode="dry_run")
    record = FailedRecord.objects.filter(run=run).first()
    with pytest.raises(ApplicationError, match="Unknown source column"):
        failed_record_correct(record=record, user=None, values={"Nope": "x"})


def test_delta_by_comparison_writes_only_changed_rows(
    eager_celery, demo_plan, demo_source_db, demo_target_db
):
    """An entity without a watermark column: a delta run compares and rewrites only changes."""
    demo_plan.entities.filter(name="accounts").update(watermark_column="")
    full = launch(demo_plan, scope_entity="accounts")
    before = checksums(demo_plan)
    ids = [
        r[0]
        for r in pg.query(demo_target_db, "SELECT account_number FROM accounts ORDER BY id LIMIT 2")
    ]
    old = pg.query(
        demo_source_db,
        'SELECT "Customer_ID"::text, "City" FROM customers WHERE "Customer_ID"::text = ANY(%s)',
        (ids,),
    )
    pg.query(
        demo_source_db,
        'UPDATE customers SET "City" = \'Springfield\' WHERE "Customer_ID"::text = ANY(%s)',
        (ids,),
    )
    try:
        delta = launch(demo_plan, mode="delta", scope_entity="accounts")
        assert delta.status == RunStatus.SUCCEEDED, delta.error
        assert (delta.extracted, delta.loaded) == (full.extracted, full.loaded)
        assert (delta.inserted, delta.updated) == (0, 2)
        assert pg.query(
            demo_target_db,
            "SELECT count(*) FROM mp_ledger.written WHERE run_id = %s",
            (str(delta.uuid),),
        ) == [(2,)]
        run_rollback_request(run=delta, user=None)
        assert checksums(demo_plan) == before
    finally:
        for key, city in old:
            pg.query(
                demo_source_db,
                'UPDATE customers SET "City" = %s WHERE "Customer_ID"::text = %s',
                (city, key),
            )


def test_dry_run_predicts_the_load_run_failures(eager_celery, demo_plan):
    """Children of parents that fail are failed in a dry run too (reference_missing)."""
    dry = launch(demo_plan, mode="dry_run")
    load = launch(demo_plan)
    assert (dry.failed, dry.loaded) == (load.failed, load.loaded)
    assert set(FailedRecord.objects.filter(run=dry).values_list("entity", "source_key")) == set(
        FailedRecord.objects.filter(run=load).values_list("entity", "source_key")
    )
