"""Re-runs transform only what changed (issue 15): the ledger keeps, per key, the hash of the
SOURCE row and of the plan's rules beside the hash of the written row; a re-run compares them
set-based and transforms/loads only keys whose source row or rules changed, or whose target
row is no longer what the ledger says was written. Real PostgreSQL source and target, eager
Celery; counts, never clocks (a pass-through spy counts the rows the real transform gets)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import RuleStep
from runs.engine import batch as engine_batch
from runs.enums import RunStatus
from runs.models import FailedRecord, Run
from runs.selectors import failed_record_filter, failed_record_total
from runs.selectors.carried import failed_records_of
from runs.services import run_create, run_rollback_request
from tests.runs.conftest import _pg_system
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
ROWS = 240


@pytest.fixture
def source_db(source_template):
    """A legacy CRM this test may change (the shared one is read-only)."""
    with pg.throwaway_database("rerun_src", template=source_template(ROWS, 7)) as name:
        yield name


@pytest.fixture
def target_db(demo_target_db):
    return demo_target_db


@pytest.fixture
def plan(source_db, target_db):
    """The demo plan, accounts only, in batches of 100 (3 batches)."""
    plan, _ = demo_plan_install(
        source=_pg_system("Legacy CRM (rw)", source_db, "dev", "source"),
        target=_pg_system("New CRM (UAT)", target_db, "uat", "target"),
        owner=User.objects.create(username="rerun-owner"),
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    plan.entities.exclude(name="accounts").delete()
    plan.batch_size = 100
    plan.save()
    return plan


@pytest.fixture
def transformed(monkeypatch):
    """Rows handed to the real transform (a pass-through spy): a list, one count per call."""
    calls: list[int] = []
    real = engine_batch.transform_frame

    def spy(**kwargs):
        calls.append(len(kwargs["frame"]))
        return real(**kwargs)

    monkeypatch.setattr(engine_batch, "transform_frame", spy)
    return calls


def _load(plan) -> Run:
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _transformed_again(run: Run) -> int:
    """Rows of a run that neither ledger state nor an unchanged earlier failure covers: they
    are transformed on every run (filtered, duplicates, rows the target changed)."""
    coerced = FailedRecord.objects.filter(run=run, category="coerced_by_target").count()
    return run.filtered + run.duplicates + coerced


def _written(target_db: str, run: Run) -> int:
    return pg.query(
        target_db, "SELECT count(*) FROM mp_ledger.written WHERE run_id = %s", (str(run.uuid),)
    )[0][0]


def _accounts(target_db: str) -> list[tuple]:
    return pg.query(target_db, "SELECT * FROM accounts ORDER BY id")


def test_rerun_of_an_unchanged_source_transforms_and_writes_no_loaded_row(
    eager_celery, plan, target_db, transformed
):
    first = _load(plan)
    assert sum(transformed) == ROWS  # the first run transforms every row
    before = _accounts(target_db)
    transformed.clear()
    again = _load(plan)
    # only the rows filtered last time go through the rules again (failures are carried)
    assert sum(transformed) == _transformed_again(first) < first.failed
    assert (again.inserted, again.updated, _written(target_db, again)) == (0, 0, 0)
    assert again.unchanged == again.loaded == first.loaded
    assert again.extracted == again.source_total == ROWS  # accounting still balances
    assert (again.failed, again.filtered) == (first.failed, first.filtered)
    assert _accounts(target_db) == before
    assert again.logs.filter(message__contains="unchanged since an earlier run").exists()
    assert "unchanged" in again.logs.get(message__startswith="Run succeeded").message


def test_rerun_transforms_and_writes_only_the_changed_source_rows(
    eager_celery, plan, source_db, target_db, transformed
):
    first = _load(plan)
    loaded_keys = pg.query(
        target_db, "SELECT account_number FROM accounts ORDER BY account_number LIMIT 3"
    )
    keys = [int(k) for (k,) in loaded_keys]
    pg.query(
        source_db,
        'UPDATE customers SET "Cust_Name" = \'Renamed Customer\' WHERE "Customer_ID" = ANY(%s)',
        (keys,),
    )
    transformed.clear()
    again = _load(plan)
    assert sum(transformed) == 3 + _transformed_again(first)
    assert (again.inserted, again.updated) == (0, 3)
    assert again.unchanged == first.loaded - 3
    assert again.loaded == first.loaded
    assert pg.query(
        target_db,
        "SELECT count(*) FROM accounts WHERE name = 'Renamed Customer'",
    ) == [(3,)]


def test_rerun_reloads_a_target_row_changed_by_hand_and_reconciles_clean(
    eager_celery, plan, target_db, transformed
):
    from validation.models import RunReport

    first = _load(plan)
    (row_id,) = pg.query(target_db, "SELECT min(id) FROM accounts")[0]
    intended = pg.query(target_db, "SELECT name FROM accounts WHERE id = %s", (row_id,))
    pg.query(target_db, "UPDATE accounts SET name = 'Edited by hand' WHERE id = %s", (row_id,))
    # touched without a change (a new row version, same values): nothing to reload
    pg.query(target_db, "UPDATE accounts SET name = name WHERE id = %s", (row_id + 1,))
    transformed.clear()
    again = _load(plan)
    assert sum(transformed) == 1 + _transformed_again(first)
    assert (again.inserted, again.updated) == (0, 1)
    assert pg.query(target_db, "SELECT name FROM accounts WHERE id = %s", (row_id,)) == intended
    # the proof: every row the re-run answers for (the one it wrote, the ones it skipped)
    # holds what it meant, nothing missing or changed
    diff = RunReport.objects.get(run=again).data["key_diffs"]["accounts"]
    assert (diff["clean"], diff["missing"], diff["changed"], diff["expected_rows"]) == (
        True,
        0,
        0,
        again.loaded,
    )
    checksum = again.validation_results.get(rule__kind="checksum")
    assert checksum.status == "passed", checksum.observed


def test_rerun_after_a_rules_change_transforms_every_row(
    eager_celery, plan, target_db, transformed
):
    first = _load(plan)
    step = RuleStep.objects.get(
        field__entity__name="accounts", field__target_column="name", rule="title"
    )
    step.rule = "upper"
    step.save()
    transformed.clear()
    again = _load(plan)
    assert again.version_id != first.version_id
    assert sum(transformed) == ROWS
    assert again.updated > 0


def test_rerun_after_the_rerun_was_rolled_back_still_skips_by_the_first_runs_ledger(
    eager_celery, plan, target_db, transformed, operator
):
    first = _load(plan)
    again = _load(plan)
    rollback = run_rollback_request(run=again, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == "verified"
    transformed.clear()
    third = _load(plan)
    assert sum(transformed) == _transformed_again(first)
    assert third.unchanged == first.loaded


def test_rerun_carries_unchanged_failures_and_the_queue_shows_each_key_once(
    eager_celery, plan, target_db, transformed, operator
):
    first = _load(plan)
    failed_before = FailedRecord.objects.filter(run=first).exclude(category="coerced_by_target")
    assert failed_before.exclude(source_hash="").count() == failed_before.count() > 0
    transformed.clear()
    again = _load(plan)
    # carried: copied (carried_from) or carried by reference (the earlier run's records in
    # the re-run's view); read as the queue shows them
    carried = failed_records_of(run=again).filter(Q(carried_from__isnull=False) | ~Q(run=again))
    assert carried.count() == failed_before.count()
    assert sum(transformed) == _transformed_again(first)  # no carried failure transformed
    # the accounting balances per batch and per run, the carried failures counted failed
    assert (again.extracted, again.failed, again.loaded) == (ROWS, first.failed, first.loaded)
    assert again.extracted == again.loaded + again.failed + again.filtered + again.duplicates
    for b in again.batches.all():
        assert b.extracted == b.loaded + b.failed + b.filtered + b.duplicates, b.seq
    fields = ("entity", "source_key", "stage", "category", "field", "rule", "message")
    kept = ("source_row", "transformed_row", "errors", "source_hash", "rules_hash")
    assert sorted(failed_records_of(run=again).values_list(*fields, *kept)) == sorted(
        FailedRecord.objects.filter(run=first).values_list(*fields, *kept)
    )
    assert failed_records_of(run=again).count() == again.failed
    assert failed_record_total(run=again, filters={})[0] == again.failed
    # the queue across runs shows each failed key once: the earlier records are "carried"
    workable = list(failed_record_filter(status="workable").values_list("entity", "source_key"))
    assert len(workable) == len(set(workable)) == again.failed
    assert failed_record_total(run=None, filters={"status": "workable"})[0] == again.failed
    shown_carried = failed_record_filter(run=first, status="carried")
    assert shown_carried.exclude(category="coerced_by_target").count() == failed_before.count()
    assert failed_record_total(run=first, filters={"status": "workable"})[0] == 0
    # rolling the re-run back makes them the first run's open failures again
    rollback = run_rollback_request(run=again, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == "verified"
    assert set(failed_before.values_list("status", flat=True)) == {"open"}
    shown_open = failed_record_filter(run=first, status="open")
    assert shown_open.exclude(category="coerced_by_target").count() == failed_before.count()
    assert failed_record_filter(run=again).count() == again.failed
    assert failed_record_filter(run=again, status="superseded").count() == again.failed
    assert failed_record_total(run=again, filters={"status": "superseded"})[0] == again.failed


def test_rerun_carries_each_batchs_failures_in_one_statement(eager_celery, plan):
    first = _load(plan)
    with CaptureQueriesContext(connection) as queries:
        again = _load(plan)
    copying = again.batches.filter(failed_records__carried_from__isnull=False).distinct()
    referring = again.batches.filter(carries__isnull=False).distinct()
    statements = [q["sql"] for q in queries.captured_queries]
    copies = [q for q in statements if "carried_from_id" in q and q.lstrip().startswith("WITH")]
    refers = [q for q in statements if "INSERT INTO runs_carriedbatch" in q]
    # copy and marking together, one statement per batch (a range carried whole: one row by
    # reference, its records not written); no separate UPDATE of the originals
    assert len(copies) == copying.count() and len(refers) == referring.count() > 0
    assert not set(copying.values_list("pk", flat=True)) & set(
        referring.values_list("pk", flat=True)
    )
    marking = 'UPDATE "runs_failedrecord" SET "status" = \'carried\''
    assert not [q for q in statements if q.startswith(marking)]
    assert failed_records_of(run=again).count() == again.failed == first.failed
    assert not failed_record_filter(run=first, status="open").exclude(category="coerced_by_target")


def test_rerun_transforms_a_failed_row_whose_source_changed(
    eager_celery, plan, source_db, transformed
):
    first = _load(plan)
    failed = FailedRecord.objects.filter(run=first).exclude(category="coerced_by_target")
    failed = failed.exclude(field="name")
    record = failed.order_by("id").first()
    pg.query(
        source_db,
        'UPDATE customers SET "Cust_Name" = \'Renamed Customer\' WHERE "Customer_ID" = %s',
        (int(record.source_key),),
    )
    transformed.clear()
    again = _load(plan)
    assert sum(transformed) == 1 + _transformed_again(first)
    fresh = FailedRecord.objects.filter(run=again, carried_from__isnull=True)
    assert list(fresh.values_list("source_key", flat=True)) == [record.source_key]
    assert again.failed == first.failed


@pytest.fixture
def full_plan(source_db, target_db):
    """The whole demo plan (contacts and orders read their parents' key maps), batches of 100."""
    plan, _ = demo_plan_install(
        source=_pg_system("Legacy CRM (rw, all)", source_db, "dev", "source"),
        target=_pg_system("New CRM (UAT, all)", target_db, "uat", "target"),
        owner=User.objects.create(username="rerun-all-owner"),
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    plan.batch_size = 100
    plan.save()
    return plan


def test_rerun_skips_children_until_a_parent_key_changes(
    eager_celery, full_plan, source_db, target_db, transformed
):
    first = _load(full_plan)
    transformed.clear()
    again = _load(full_plan)
    # contacts and orders (reference lookups) are skipped like accounts: parents' keys unchanged
    assert sum(transformed) == _transformed_again(first)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, first.loaded)
    # an account that failed now loads: a parent key appears, every child row is transformed
    # again, and the contacts that pointed at the missing account load now
    missing = FailedRecord.objects.filter(
        run=first, entity="contacts", category="reference_missing"
    )
    parents = {str(r.source_row.get("Customer_ID")) for r in missing}
    bad = FailedRecord.objects.filter(run=first, entity="accounts", source_key__in=parents)
    bad = bad.order_by("id").first()
    # its contacts that failed for the missing account alone load once it is there
    fixed = sum(
        1
        for r in missing
        if str(r.source_row.get("Customer_ID")) == bad.source_key and len(r.errors) == 1
    )
    good = pg.query(target_db, "SELECT account_number FROM accounts ORDER BY id LIMIT 1")[0][0]
    columns = (
        '"Cust_Name", "Address_Line1", "Address_Line2", "City", "State_Code", "Zip_Code", '
        '"Phone_Number", "Email_Address", "Creation_Date", "Status", "Legacy_Notes"'
    )
    pg.query(
        source_db,
        f"UPDATE customers SET ({columns}) = (SELECT {columns} FROM customers "  # noqa: S608 - fixed column list
        'WHERE "Customer_ID" = %s) WHERE "Customer_ID" = %s',
        (int(good), int(bad.source_key)),
    )
    transformed.clear()
    third = _load(full_plan)
    contacts = pg.query(source_db, "SELECT count(*) FROM contacts")[0][0]
    assert sum(transformed) >= 1 + contacts
    assert fixed > 0 and third.loaded >= first.loaded + 1 + fixed
    children = pg.query(
        target_db,
        "SELECT count(*) FROM contacts c JOIN accounts a ON a.id = c.account_id "
        "WHERE a.account_number = %s",
        (bad.source_key,),
    )[0][0]
    assert children >= fixed
