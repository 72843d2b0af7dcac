"""The error queue's counts, facets and text search at scale, on PostgreSQL (issue 20).

The tally that the triggers of migration 0013 keep is checked against an independent oracle:
a GROUP BY over the records themselves, after every step of random sequences of the writes the
product does (batch inserts, re-process and ignore updates, corrections, deletes of records and
of whole runs). The text filter is checked for its results, its pages and its plans.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs.models import FailedRecord, FailedRecordTally, Run
from runs.selectors import (
    failed_record_facets,
    failed_record_filter,
    failed_record_filter_planned,
    failed_record_search,
    failed_record_total,
)
from runs.selectors import queue as queue_selectors
from tests.runs.test_console_queue import _records, _run

DIMS = ("run_id", "entity", "stage", "category", "field", "status")
ENTITIES = ("accounts", "contacts", "orders")
CATEGORIES = ("invalid_format", "lookup_miss", "coerced_by_target")
STATUSES = ("open", "fixed", "ignored", "resolved")


def _oracle() -> dict[tuple, int]:
    """Counts per group, straight from the records."""
    rows = FailedRecord.objects.order_by().values(*DIMS).annotate(n=Count("id"))
    return {tuple(r[d] for d in DIMS): r["n"] for r in rows}


def _tally() -> dict[tuple, int]:
    totals: dict[tuple, int] = {}
    for row in FailedRecordTally.objects.values(*DIMS, "n"):
        key = tuple(row[d] for d in DIMS)
        totals[key] = totals.get(key, 0) + row["n"]
    return {k: n for k, n in totals.items() if n}


step = st.one_of(
    st.tuples(st.just("insert"), st.integers(1, 40), st.integers(0, 3)),
    st.tuples(st.just("status"), st.sampled_from(STATUSES), st.integers(0, 3)),
    st.tuples(st.just("category"), st.sampled_from(CATEGORIES), st.integers(0, 3)),
    st.tuples(st.just("correct"), st.just(""), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.just(""), st.integers(0, 3)),
    st.tuples(st.just("drop_run"), st.just(""), st.integers(0, 1)),
)


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=10))
def test_tally_equals_the_records_after_any_sequence_of_writes(steps):
    FailedRecord.objects.all().delete()
    Run.objects.all().delete()
    runs = [_run(None, n) for n in range(2)]
    serial = 0
    for kind, value, pick in steps:
        live = [r for r in runs if Run.objects.filter(pk=r.pk).exists()]
        if not live:
            live = runs = [_run(None, 9)]
        run = live[pick % len(live)]
        records = FailedRecord.objects.filter(run=run)
        some = records.filter(id__in=list(records.values_list("id", flat=True)[pick::2]))
        with transaction.atomic():
            if kind == "insert":
                batch = _records(run, pick + value, start=serial)
                for record in batch:
                    record.entity = ENTITIES[(serial + pick) % 3]
                serial += len(batch)
                FailedRecord.objects.bulk_create(batch)
            elif kind == "status":
                reason = "checked by hand" if value == "ignored" else ""
                some.update(status=value, ignore_reason=reason)
            elif kind == "category":
                some.update(category=value)
            elif kind == "correct":  # a save() of one record, as the inline correction does
                record = records.first()
                if record is not None:
                    record.corrected_values = {"email": "fixed@example.com"}
                    record.status = "fixed"
                    record.save()
            elif kind == "delete":
                some.delete()
            else:
                run.delete()
        assert _tally() == _oracle()
        assert set(FailedRecord.objects.values_list("message", flat=True)) <= _messages()


@pytest.mark.django_db
def test_queue_counts_and_facets_come_from_the_tally_not_from_the_records(client_for, viewer):
    run = _run()
    FailedRecord.objects.bulk_create(_records(run, 300))
    FailedRecord.objects.filter(run=run, source_key__endswith="7").update(
        status="ignored", ignore_reason="duplicate of K1"
    )
    client = client_for(viewer)
    url = reverse("runs:queue", args=[run.uuid])
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(url, {"category": "lookup_miss"})
    on_records = [
        q["sql"]
        for q in ctx.captured_queries
        if 'FROM "runs_failedrecord"' in q["sql"]
        and ("COUNT(" in q["sql"] or "DISTINCT" in q["sql"])
    ]
    assert on_records == []  # neither the totals nor the dropdowns scan the records
    workable = failed_record_filter(run=run, status="workable")
    assert page.context["open_total"] == workable.count() == 270
    assert page.context["total"] == workable.filter(category="lookup_miss").count() == 75
    assert page.context["facets"] == {
        "entity": ["accounts", "contacts"],
        "category": ["invalid_format", "lookup_miss"],
        "field": ["birth_date", "email", "phone", "state"],
    }
    assert failed_record_facets(run=run) == page.context["facets"]
    assert failed_record_total(run=run, filters={"status": "ignored"}) == (30, False)


def _keys(page) -> list[str]:
    return [r.source_key for r in page.records]


@pytest.mark.django_db
@pytest.mark.parametrize("dense_at", [10**9, 0], ids=["trigram-plan", "walk-plan"])
def test_text_search_pages_and_totals_agree_with_a_python_oracle(dense_at, monkeypatch):
    """Both plans (trigram lookup and newest-first walk) give the oracle's records, in order,
    page after page; the message and the source key are searched, case-insensitively."""
    monkeypatch.setattr(queue_selectors, "DENSE_AT", dense_at)
    run = _run()
    FailedRecord.objects.bulk_create(_records(run, 400))
    everything = list(FailedRecord.objects.filter(run=run).order_by("-id"))
    for q in ("USER1", "k000012", "e-mail", "50_%", "nothing like it"):
        wanted = [
            r.source_key
            for r in everything
            if (q.upper() in r.message.upper() or q.upper() in r.source_key.upper())
            and r.status == "open"
        ]
        got, after = [], None
        while True:
            page = failed_record_search(
                run=run, filters={"q": q, "status": "workable"}, after=after, size=7
            )
            assert page.total == len(wanted) and not page.capped
            got += _keys(page)
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert got == wanted, q
        api = failed_record_filter_planned(run=run, filters={"q": q, "status": "workable"})
        assert list(api.order_by("-id").values_list("source_key", flat=True)) == wanted


@pytest.mark.django_db
def test_a_rare_text_gives_its_page_and_its_total_from_one_trigram_lookup(monkeypatch):
    """The rare-text plan reads the matching ids once (at most COUNT_CAP + 1) for the page and
    the exact total; only past COUNT_CAP matches is a second query counting them."""
    monkeypatch.setattr(queue_selectors, "DENSE_AT", 10**9)  # the trigram plan
    run = _run()
    FailedRecord.objects.bulk_create(_records(run, 120))
    oracle = failed_record_filter(run=run, q="user1", status="workable")
    for cap, lookups in ((1_000, 1), (20, 2)):
        monkeypatch.setattr(queue_selectors, "COUNT_CAP", cap)
        with CaptureQueriesContext(connection) as ctx:
            page = failed_record_search(
                run=run, filters={"q": "user1", "status": "workable"}, size=7
            )
        text = [
            q["sql"]
            for q in ctx.captured_queries
            if "LIKE UPPER" in q["sql"] and "AS MATERIALIZED" not in q["sql"]
        ]
        assert len(text) == lookups, text
        assert (page.total, page.capped) == (oracle.count(), False)
        assert [r.id for r in page.records] == list(
            oracle.order_by("-id").values_list("id", flat=True)[:7]
        )


@pytest.mark.django_db
def test_a_frequent_text_is_counted_up_to_the_cap(monkeypatch):
    monkeypatch.setattr(queue_selectors, "DENSE_AT", 0)  # the newest-first walk
    monkeypatch.setattr(queue_selectors, "COUNT_CAP", 100)
    run = _run()
    FailedRecord.objects.bulk_create(_records(run, 250))
    page = failed_record_search(run=run, filters={"q": "e-mail"})
    assert (page.total, page.capped, len(page.records)) == (100, True, 50)


@pytest.mark.django_db
def test_the_text_filter_uses_the_message_and_key_indexes():
    """Migration 0018's indexes are on exactly the expressions the filter compares: the
    distinct messages' trigrams, the records' message digest and the source keys' trigrams."""
    run = _run()
    FailedRecord.objects.bulk_create(_records(run, 50))
    hits = failed_record_filter(q="user42@").order_by().values("id")
    sql, params = hits.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # 50 rows: else a scan is cheaper
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for index in ("failed_message_trgm", "failed_record_message_digest", "failed_record_key_trgm"):
        assert index in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.django_db
def test_the_text_filter_matches_the_message_or_the_key_not_across_them():
    """A text found in the message or in the source key (any case) matches; one that would
    only be found across the two (the old ``message || ' ' || key``) does not."""
    run = _run()
    FailedRecord.objects.bulk_create(_records(run, 30))

    def keys(q: str) -> list[str]:
        return sorted(failed_record_filter(run=run, q=q).values_list("source_key", flat=True))

    assert keys("USER7@") == ["K0000007"]  # message text
    assert keys("k000002") == [f"K00000{i:02d}" for i in range(20, 30)]  # key text
    assert keys("address K0000007") == []  # across message and key
    assert keys("e-mail ADDRESS") == keys("") != []


@pytest.mark.django_db
def test_distinct_messages_are_kept_once_and_follow_rewrites_and_deletes():
    """Every message a record holds is in runs_failedmessage once, under its md5 digest, after
    a COPY-like bulk insert, a re-process that rewrites a message, and the run's deletion."""
    run = _run()
    records = _records(run, 40)
    for i, record in enumerate(records):
        record.message = f"bad value {i % 4}"
    FailedRecord.objects.bulk_create(records)
    assert _messages() == {f"bad value {i}" for i in range(4)}
    FailedRecord.objects.filter(run=run, source_key="K0000001").update(message="now 'x' is wrong")
    FailedRecord.objects.filter(run=run).update(status="superseded")  # status only
    assert _messages() == {f"bad value {i}" for i in range(4)} | {"now 'x' is wrong"}
    assert failed_record_filter(run=run, q="'X' IS").count() == 1
    run.delete()
    assert _messages() == set()


def _messages() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT digest, message, md5(message)::uuid = digest FROM runs_failedmessage"
        )
        rows = cursor.fetchall()
    assert all(ok for _, _, ok in rows) and len({d for d, _, _ in rows}) == len(rows)
    return {m for _, m, _ in rows}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"category": "bogus"}, "“bogus” is not a failure category"),
        ({"status": "bogus"}, "Filter status “bogus”"),
        ({"stage": "nowhere"}, "Filter stage “nowhere”"),
    ],
)
def test_a_refused_filter_is_named_and_offers_no_action_on_all_matching(
    client_for, analyst, params, named
):
    run = _run()
    FailedRecord.objects.bulk_create(_records(run, 5))
    client = client_for(analyst)
    ok = client.get(reverse("runs:queue", args=[run.uuid]))
    assert "Ignore all matching" in ok.content.decode()  # an analyst works the queue
    page = client.get(reverse("runs:queue", args=[run.uuid]), params)
    text = page.content.decode().replace("&quot;", '"')
    assert page.status_code == 400 and named in text
    assert "Re-process all" not in text and "Ignore all matching" not in text


@pytest.mark.django_db
def test_new_messages_are_inserted_in_digest_order():
    """Concurrent batches sharing new messages take their unique-key waits in one order (no
    deadlock between two statements that each inserted one the other needs); the digest is
    computed once per distinct message, not per record (issue 20: the trigger's read of a
    batch's ~3,300 records, ~12 ms → ~3 ms in a replay)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('runs_failedmessage_insert'::regproc)")
        body = " ".join(cursor.fetchone()[0].split())
    assert (
        "SELECT md5(message)::uuid, message FROM (SELECT DISTINCT message FROM message_new) "
        "AS distinct_new ORDER BY 1 ON CONFLICT DO NOTHING" in body
    ), body
