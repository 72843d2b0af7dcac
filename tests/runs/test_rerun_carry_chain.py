"""Re-runs of an unchanged source carry the earlier failures (issue 15): what the error queue
and rollback must show however a carry is stored (a copy per record, or a batch carried by
reference). Read through the queue's own selectors, never the records table: a chain of
three runs, counts once across runs, a carried record re-processed and then rolled back, and
rollback giving the earlier run its workable failures back. Real PostgreSQL source and
target, eager Celery."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.urls import reverse

from runs.enums import RollbackStatus
from runs.models import CarriedBatch, FailedRecord, Run
from runs.selectors import failed_record_filter, failed_record_total
from runs.services import (
    RollbackOrderError,
    failed_record_correct,
    failed_record_reprocess,
    run_rollback_request,
)
from tests.runs import test_rerun_unchanged as unchanged
from tests.support import pg

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.postgres,
]
source_db, target_db, plan = unchanged.source_db, unchanged.target_db, unchanged.plan
_load = unchanged._load
WORKABLE = {"status": "workable"}


def _keys(run: Run | None, status: str = "workable") -> list[tuple[str, str]]:
    """(entity, source key) of the records the queue shows for ``run`` (None: every run)."""
    qs = failed_record_filter(run=run, status=status)
    return sorted(qs.values_list("entity", "source_key"))


def _count(run: Run | None, status: str = "workable") -> int:
    """The queue's total for the filter (the tally on PostgreSQL)."""
    return failed_record_total(run=run, filters={"status": status} if status else {})[0]


def _failing(run: Run) -> list[tuple[str, str]]:
    """Every failure ``run`` accounts for, whatever its status now."""
    return sorted(
        k
        for status in ("open", "fixed", "reprocessed", "ignored")
        for k in _keys(run, status=status)
    )


STATUSES = ("open", "fixed", "reprocessed", "ignored", "carried", "superseded")


def _counted_as_listed(*runs: Run) -> None:
    """Every view (each run's, and across runs) counts (the tally, on PostgreSQL) exactly the
    records it lists, per status, and lists each (entity, key) once."""
    for run in (*runs, None):
        for status in STATUSES:
            assert _count(run, status) == len(_keys(run, status)), (run and run.pk, status)
        assert _count(run, "") == len(_keys(run, "")), run and run.pk
        listed = _keys(run, "" if run else "workable")
        assert len(listed) == len(set(listed)), run and run.pk


def _record_reads(qs) -> list[str]:
    """How the query's plan reaches the failed records, planned as if the table were large
    (no sequential scans): each read's index condition and filter, or its node type when it
    has neither. Which index a plan over a few hundred records picks follows the statistics
    earlier tests left (a backward scan of the primary key, filtering, is as cheap there);
    what must hold is that the condition is applied where the records are read."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        plan = json.loads(qs.order_by("-id")[:50].explain(format="json"))

    def reads(node: dict):
        if node.get("Relation Name") == "runs_failedrecord":
            conditions = [node[k] for k in ("Index Cond", "Filter") if node.get(k)]
            yield " AND ".join(conditions) or node["Node Type"]
        for child in node.get("Plans", []):
            yield from reads(child)

    return list(reads(plan[0]["Plan"]))


def _rollback(run: Run, operator) -> None:
    rollback = run_rollback_request(run=run, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == RollbackStatus.VERIFIED, rollback.error


def test_a_chain_of_three_unchanged_runs_shows_each_failure_once_in_the_newest(
    eager_celery, plan, operator
):
    first = _load(plan)
    failing = _keys(first)
    assert len(failing) == first.failed > 0
    second = _load(plan)
    third = _load(plan)
    assert third.failed == second.failed == first.failed
    # the newest run's queue holds every failure, the earlier ones none workable
    assert _keys(third) == failing and _count(third) == first.failed
    assert _keys(first) == _keys(second) == [] and _count(first) == _count(second) == 0
    assert _count(first, "carried") == _count(second, "carried") == first.failed
    # across runs each key once, counted once
    assert _keys(None) == failing and _count(None) == first.failed
    _counted_as_listed(first, second, third)
    # rolled back newest first, each run's failures are workable again in turn
    _rollback(third, operator)
    assert _keys(second) == failing and _count(second) == first.failed
    assert _keys(None) == failing and _count(None) == first.failed
    assert _keys(first) == [] and _count(third) == 0
    _counted_as_listed(first, second, third)
    _rollback(second, operator)
    assert _keys(first) == failing and _count(first) == first.failed
    assert _keys(None) == failing and _count(None) == first.failed
    _counted_as_listed(first, second, third)


def test_the_earlier_run_cannot_be_rolled_back_while_a_later_run_carries_its_failures(
    eager_celery, plan, operator
):
    first = _load(plan)
    second = _load(plan)
    assert (second.inserted, second.updated) == (0, 0)  # it wrote nothing, carried all
    with pytest.raises(RollbackOrderError) as refused:
        run_rollback_request(run=first, user=operator)
    assert [r["run"] for r in refused.value.extra["later_runs"]] == [second.pk]
    assert _keys(second) == _keys(None) and _count(first) == 0


def test_rolling_back_the_rerun_gives_the_earlier_run_its_workable_failures_back(
    eager_celery, plan, operator
):
    first = _load(plan)
    failing = _keys(first)
    second = _load(plan)
    assert _failing(second) == failing and _count(first) == 0
    _rollback(second, operator)
    assert _keys(first) == failing and _count(first) == first.failed
    assert _keys(second) == [] and _count(second) == 0
    assert _keys(None) == failing and _count(None) == first.failed
    _counted_as_listed(first, second)
    # and a run after the rollback carries them again, from the first run
    third = _load(plan)
    assert _keys(third) == failing and _count(first) == 0 and _count(None) == first.failed
    _counted_as_listed(first, second, third)


def test_a_carried_record_reprocessed_in_the_newest_run_is_undone_by_its_rollback(
    eager_celery, plan, target_db, operator
):
    first = _load(plan)
    second = _load(plan)
    records = failed_record_filter(run=second, status="workable", field="email")
    record = next(r for r in records.order_by("id") if len(r.errors) == 1)
    key = record.source_key
    email = f"fixed{key}@example.com"
    failed_record_correct(record=record, user=operator, values={"Email_Address": email})
    result = failed_record_reprocess(
        records=failed_record_filter(run=second, status="workable").filter(source_key=key),
        user=operator,
    )
    assert (result.attempted, result.fixed) == (1, 1)
    second.refresh_from_db()
    # the newest run's accounting and queue: the key loaded, one failure fewer
    assert (second.failed, second.inserted) == (first.failed - 1, 1)
    assert ("accounts", key) not in _keys(second) and ("accounts", key) not in _keys(None)
    assert _keys(second, "reprocessed") == [("accounts", key)]
    assert _count(None) == first.failed - 1 and _count(first) == 0
    assert pg.query(target_db, "SELECT email FROM accounts WHERE account_number = %s", (key,))
    _counted_as_listed(first, second)
    # the newest run rolled back: the row is gone, the key is the first run's open failure
    _rollback(second, operator)
    assert not pg.query(target_db, "SELECT 1 FROM accounts WHERE account_number = %s", (key,))
    assert ("accounts", key) in _keys(first)
    assert _count(first) == first.failed and _count(None) == first.failed
    assert _keys(first, "reprocessed") == []
    _counted_as_listed(first, second)


def test_a_chain_refers_to_the_batch_holding_the_records_and_reprocesses_through_the_newest(
    eager_celery, plan, target_db, operator
):
    first = _load(plan)
    second = _load(plan)
    third = _load(plan)
    refs = CarriedBatch.objects.filter(run=third)
    if connection.vendor == "postgresql":  # the carry by reference is PostgreSQL's
        assert refs.exists()
        holders = set(first.batches.values_list("pk", flat=True))
        assert set(refs.values_list("source_batch_id", flat=True)) <= holders
        assert (
            not FailedRecord.objects.filter(run__in=(second, third))
            .exclude(carried_from__isnull=True)
            .filter(batch__carries__isnull=False)
        )
    records = failed_record_filter(run=third, status="workable", field="email")
    record = next(r for r in records.order_by("id") if len(r.errors) == 1)
    key = record.source_key
    corrected = failed_record_correct(
        record=record, user=operator, values={"Email_Address": f"fixed{key}@example.com"}
    )
    assert corrected.run_id == third.pk and corrected.status == "fixed"
    assert _keys(third, "fixed") == [("accounts", key)]
    assert _keys(second, "fixed") == _keys(first, "fixed") == []
    _counted_as_listed(first, second, third)
    # re-processing the record as the queue listed it acts on its copy in the newest run
    result = failed_record_reprocess(
        records=FailedRecord.objects.filter(pk=record.pk), user=operator
    )
    assert (result.attempted, result.fixed) == (1, 1)
    third.refresh_from_db()
    assert (third.failed, third.inserted) == (first.failed - 1, 1)
    _counted_as_listed(first, second, third)
    _rollback(third, operator)
    assert not pg.query(target_db, "SELECT 1 FROM accounts WHERE account_number = %s", (key,))
    assert ("accounts", key) in _keys(second) and _count(second) == first.failed
    assert _count(third, "superseded") == first.failed and _count(third) == 0
    _counted_as_listed(first, second, third)
    # a run after: carries the second run's failures again (every one open there)
    fourth = _load(plan)
    assert _keys(fourth) == _keys(None) and _count(fourth) == first.failed
    _counted_as_listed(first, second, third, fourth)


def test_a_rerun_that_carried_by_reference_analyses_only_for_the_records_it_wrote(
    eager_celery, plan, monkeypatch
):
    from runs.services import queue_actions

    _load(plan)
    second = _load(plan)
    written = FailedRecord.objects.filter(run=second).count()  # the coerced, recorded anew
    assert written < second.failed
    monkeypatch.setattr(queue_actions, "ANALYZE_AFTER", written + 1)
    assert queue_actions.failed_records_analyze(run=second) is False
    monkeypatch.setattr(queue_actions, "ANALYZE_AFTER", written)
    assert queue_actions.failed_records_analyze(run=second) is True


def test_the_api_lists_a_record_carried_by_reference_under_the_run_answering_for_it(
    eager_celery, plan, viewer, client_for
):
    first = _load(plan)
    second = _load(plan)
    record = failed_record_filter(run=second, status="workable").exclude(run=second).first()
    assert record is not None and record.run_id == first.pk  # held by the first run
    client = client_for(viewer)
    for params in ({"q": record.source_key}, {"q": record.source_key, "run": str(second.uuid)}):
        rows = client.get("/api/failed-records/", params).json()["results"]
        mine = [r for r in rows if r["uuid"] == str(record.uuid)]
        assert [(r["run"], r["status"]) for r in mine] == [(str(second.uuid), "open")], params
    rows = client.get(
        "/api/failed-records/", {"q": record.source_key, "run": str(first.uuid)}
    ).json()["results"]
    assert [(r["run"], r["status"]) for r in rows if r["uuid"] == str(record.uuid)] == [
        (str(first.uuid), "carried")
    ]


def test_a_record_carried_by_reference_opens_under_the_run_answering_for_it(
    eager_celery, plan, viewer, client_for
):
    """Its page and its API detail name the run that answers for it (the newest live
    reference), as the lists do; the record itself still belongs to the run holding it."""
    from django.urls import reverse

    first = _load(plan)
    second = _load(plan)
    record = failed_record_filter(run=second, status="workable").exclude(run=second).first()
    assert record is not None and record.run_id == first.pk
    client = client_for(viewer)
    detail = client.get(f"/api/failed-records/{record.uuid}/").json()
    assert (detail["run"], detail["status"]) == (str(second.uuid), "open")
    page = client.get(reverse("runs:failed_record", args=[record.uuid])).content.decode()
    crumbs = page.split('class="crumbs"')[1].split("</p>")[0]
    assert reverse("runs:queue", args=[second.uuid]) in crumbs
    assert reverse("runs:queue", args=[first.uuid]) not in crumbs
    assert FailedRecord.objects.get(pk=record.pk).run_id == first.pk  # nothing saved


def test_a_range_compared_row_by_row_copies_the_failures_a_reference_carried(
    eager_celery, plan, source_db, target_db, operator
):
    """The second run carries every range by reference; one source row changes; the third
    run compares that range row by row and copies its unchanged failures (per key) from the
    records the second run referred to: the second run shows them carried, each view counts
    what it lists, and rolling the third run back gives them back to the second run."""
    first = _load(plan)
    second = _load(plan)
    failing = _keys(second)
    (key,) = pg.query(
        target_db, "SELECT account_number FROM accounts ORDER BY account_number LIMIT 1"
    )[0]
    pg.query(
        source_db,
        'UPDATE customers SET "Cust_Name" = \'Renamed Customer\' WHERE "Customer_ID" = %s',
        (int(key),),
    )
    third = _load(plan)
    assert third.failed == first.failed and _keys(third) == failing
    copied = FailedRecord.objects.filter(run=third, carried_from__run=first)
    assert copied.exists()  # per key, from the records held by the first run
    assert _keys(second) == [] and _count(second, "carried") == first.failed
    assert _keys(None) == failing and _count(None) == first.failed
    _counted_as_listed(first, second, third)
    _rollback(third, operator)
    assert _keys(second) == failing and _count(second) == first.failed
    assert _keys(None) == failing and _count(None) == first.failed
    _counted_as_listed(first, second, third)


def test_a_status_filter_in_a_referring_runs_view_is_narrowed_by_the_stored_status(
    eager_celery, plan, operator
):
    """A run's view shows a referred record as carried, superseded or its stored status, so a
    filter on any other status also asks the stored status: an index condition, where the
    shown status alone (a CASE per record) walked the whole view (1,483 ms for an empty
    'ignored' page over 165,878 referred records of a 1 M bench, 7 ms with the condition).
    What each filter lists is unchanged (every status counted as listed)."""
    first = _load(plan)
    second = _load(plan)
    assert CarriedBatch.objects.filter(run=second).exists()
    stored = '"runs_failedrecord"."status" '
    for status in ("open", "fixed", "reprocessed", "ignored", "workable"):
        sql = str(failed_record_filter(run=second, status=status).query)
        assert f"AND {stored}" in sql, status
    for status in ("carried", "superseded"):  # shown, never stored as such in a view
        sql = str(failed_record_filter(run=second, status=status).query)
        assert f"AND {stored}" not in sql, status
    _counted_as_listed(first, second)


def test_the_holding_runs_view_leaves_out_the_batches_a_live_reference_carries(
    eager_celery, plan, operator
):
    """A run whose batches a later live run carries by reference shows those records as
    carried, so a filter on any other status leaves those batches out before reading a
    record: the view's condition names the run's other batches, and when every batch is
    carried the query reads only the run's records without a batch. (It walked every failed
    record of every run, newest first, to find none: ~264 ms at 1 M, ~2.6 s at 10 M.) What
    each view lists and counts is unchanged, before and after the reference is rolled back."""
    first = _load(plan)
    second = _load(plan)
    held = set(CarriedBatch.objects.filter(source_run=first).values_list("source_batch", flat=True))
    assert held and held == set(
        FailedRecord.objects.filter(run=first).values_list("batch", flat=True)
    )
    for status in ("workable", "open", "fixed", "reprocessed", "ignored"):
        reads = _record_reads(failed_record_filter(run=first, status=status))
        assert reads and all("batch_id IS NULL" in r for r in reads), (status, reads)
    reads = _record_reads(failed_record_filter(run=first, status="carried"))
    assert not all("batch_id IS NULL" in r for r in reads), reads
    _counted_as_listed(first, second)
    _rollback(second, operator)
    assert _keys(first) == _failing(first) != []
    _counted_as_listed(first, second)


def test_the_app_database_runs_without_jit():
    """The queue's views estimate high costs (a CASE per record over a walk that a LIMIT ends
    early), and PostgreSQL's JIT compiled one page's query for ~570 ms to run it in 60 ms: the
    app's connections turn JIT off (interactive queries; the engine's connections to the
    target are its own)."""
    with connection.cursor() as cur:
        cur.execute("SHOW jit")
        assert cur.fetchone()[0] == "off"


def test_the_holding_runs_queue_page_says_how_many_records_a_later_run_carries(
    eager_celery, plan, operator, viewer, client_for
):
    """The holding run's queue shows no open record once a later run carries them all; its
    page says where they went (a count of the records carried into a later run, linking to
    them) instead of leaving a failed counter that matches nothing in sight."""
    first = _load(plan)
    second = _load(plan)
    carried = _count(first, "carried")
    assert carried == first.failed > 0 and _count(first) == 0
    page = client_for(viewer).get(reverse("runs:queue", args=[first.uuid])).content.decode()
    assert f'id="carried-count">{carried:,}<' in page
    assert "carried into a later run" in page
    newest = client_for(viewer).get(reverse("runs:queue", args=[second.uuid])).content.decode()
    assert 'id="carried-count"' not in newest  # it answers for them: nothing carried on
