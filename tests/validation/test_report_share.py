"""The report's expected side shared with a helper on another worker (issue 20's report line:
a second process, so a second core): the helper takes key ranges from the same counter and
sends their Parts back through Redis; the Expected is the one pass's, a tampered target still
fails, and a helper that dies, errors, starts late or read other failed keys changes nothing."""

from __future__ import annotations

import threading
from decimal import Decimal

import pandas as pd
import pytest
from django.conf import settings
from django.db import connections

from runs.engine.rules import TEXT
from runs.services.state import run_entities
from tests.support import pg
from tests.support.validation_rules import validation_rule as _rule
from tests.validation.test_report_prefetch import _load
from validation import expected_share, prefetch, tasks
from validation import reconciliation as rec
from validation.expected_share import FAILED, Share, client, part_bytes, part_of
from validation.models import ValidationResult
from validation.reconciliation import expected as expected_side
from validation.reconciliation.expected import Part
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class Helper:
    """Another worker: each dispatched helper task runs in a thread of its own, as
    ``expected_help`` (what the task calls); ``wait`` blocks the leader until the helper has
    sent its first Part, so the helper surely takes part — right after the leader published
    the key ranges (a helper asked at the report's start waits for them), or when asked."""

    def __init__(self, monkeypatch, *, wait: bool = True) -> None:
        self.computed: list[int] = []
        self.threads: dict[str, threading.Thread] = {}
        self.wait = wait
        monkeypatch.setattr(prefetch, "_broker", lambda: settings.CELERY_BROKER_URL)
        monkeypatch.setattr(tasks.expected_part_task, "apply_async", self.start)
        publish = getattr(Share, "publish", None)

        def published(share, job):
            out = publish(share, job)
            if share.token in self.threads:  # asked early: it now claims
                self._first_part(share.token)
            return out

        monkeypatch.setattr(Share, "publish", published, raising=False)

    def start(self, args, **_kwargs) -> None:
        (token,) = args

        def run() -> None:
            try:
                self.computed.append(prefetch.expected_help(token))
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        self.threads[token] = thread
        thread.start()
        if client(settings.CELERY_BROKER_URL).exists(f"{expected_share.PREFIX}{token}:job"):
            self._first_part(token)  # asked after the ranges were published

    def _first_part(self, token: str) -> None:
        thread = self.threads[token]
        if self.wait:
            conn = client(settings.CELERY_BROKER_URL)
            while thread.is_alive() and not conn.keys(f"{expected_share.PREFIX}{token}:part:*"):
                thread.join(0.01)

    def join(self) -> None:
        for thread in self.threads.values():
            thread.join()


def _expected(run, entity_name: str):
    ctx = rec.RunContext(run=run)
    ctx.pending = prefetch.expected_start(ctx, run_entities(run))
    prefetch.expected_collect(ctx)
    return ctx.expected[entity_name]


def _same(got, want) -> None:
    assert isinstance(got, rec.Expected), got
    assert (got.rows, got.sums, got.counts) == (want.rows, want.sums, want.counts)
    assert got.samples.keys() == want.samples.keys()
    for key, rows in want.samples.items():
        pd.testing.assert_frame_equal(got.samples[key].frame(), rows.frame())


def _same_as_one_pass(got, run) -> None:
    """``got`` (accounts' Expected) equals the one pass of ``expected_aggregate``."""
    entity = next(e for e in run_entities(run) if e.name == "accounts")
    _same(got, rec.expected_aggregate(rec.RunContext(run=run), entity))


def _by_thread(monkeypatch) -> list[tuple[int, str]]:
    """(range index, computing thread's name) for every accounts range computed, leader or
    helper."""
    seen: list[tuple[int, str]] = []
    compute = prefetch._per_thread

    def counted(reader, ranges, entity, *args):
        fn, opened = compute(reader, ranges, entity, *args)

        def each(index: int):
            if entity.name == "accounts":
                seen.append((index, threading.current_thread().name))
            return fn(index)

        return each, opened

    monkeypatch.setattr(prefetch, "_per_thread", counted)
    return seen


def test_a_helper_computes_part_of_the_ranges_and_the_expected_is_the_one_pass(
    eager_celery, demo_plan, monkeypatch
):
    monkeypatch.setattr(expected_side, "REPORT_CHUNK", 25)  # many key ranges
    _rule(demo_plan, "seven", "sample_compare", "accounts", n=7, seed=3)
    _rule(demo_plan, "mix", "category_count_match", "accounts", "account_status")
    run = _load(demo_plan)
    seen = _by_thread(monkeypatch)
    helper = Helper(monkeypatch)
    got = _expected(run, "accounts")
    helper.join()
    _same_as_one_pass(got, run)
    ranges = {i for i, _ in seen}
    assert len(ranges) > 4
    # every range computed once, some by the helper (and so sent through Redis), some here
    assert sorted(i for i, _ in seen) == sorted(ranges)
    by_helper = [i for i, name in seen if name.startswith("expected-helper")]
    assert 1 <= len(by_helper) <= sum(helper.computed)


def test_a_tampered_target_still_fails_with_a_helper(
    eager_celery, demo_plan, demo_target_db, monkeypatch
):
    monkeypatch.setattr(expected_side, "REPORT_CHUNK", 25)
    run = _load(demo_plan)
    demo_plan.validation_rules.filter(phase="post").update(enabled=False)
    _rule(demo_plan, "every row", "sample_compare", "accounts", pct=100.0)
    _rule(demo_plan, "statuses", "category_count_match", "accounts", "account_status")
    _rule(demo_plan, "orders sum", "sum_match", "orders", "total_amount")
    helper = Helper(monkeypatch)
    assert run_report_build(run=run).verdict == "pass"
    key = pg.query(demo_target_db, "SELECT max(id)::text FROM accounts")[0][0]
    pg.query(
        demo_target_db,
        "UPDATE accounts SET billing_postal_code = '00000', account_status = CASE "
        "account_status WHEN 'Active' THEN 'Inactive' ELSE 'Active' END WHERE id = %s::bigint",
        (key,),
    )
    pg.query(
        demo_target_db,
        "UPDATE orders SET total_amount = total_amount + 0.01 "
        "WHERE id = (SELECT max(id) FROM orders)",
    )
    report = run_report_build(run=run)
    helper.join()
    assert sum(helper.computed) >= 2  # the helper took part in both reports
    statuses = {
        r.rule.name: r.status
        for r in ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    }
    assert statuses == {"every row": "failed", "statuses": "failed", "orders sum": "failed"}
    assert report.verdict == "fail"
    found = ValidationResult.objects.get(run=run, rule__name="every row").details["differences"]
    assert {d["field"] for d in found} >= {"billing_postal_code", "account_status"}


def test_ranges_a_helper_lost_or_failed_are_computed_by_the_report(
    eager_celery, demo_plan, monkeypatch
):
    monkeypatch.setattr(expected_side, "REPORT_CHUNK", 25)
    monkeypatch.setattr(expected_share, "HEARTBEAT", 1)
    _rule(demo_plan, "seven", "sample_compare", "accounts", n=7, seed=3)
    run = _load(demo_plan)
    seen = _by_thread(monkeypatch)
    monkeypatch.setattr(prefetch, "_broker", lambda: settings.CELERY_BROKER_URL)

    asked: list[str] = []
    monkeypatch.setattr(
        tasks.expected_part_task, "apply_async", lambda args, **_kw: asked.append(args[0])
    )
    publish = Share.publish

    def dies(share, job):
        out = publish(share, job)
        # a helper (asked at the start) claims range 0 and dies, then claims 1 and fails it
        assert asked
        opened = Share.open(client(settings.CELERY_BROKER_URL), share.token)
        assert opened is not None
        helper, _job = opened
        helper.beat()
        assert (helper.claim(), helper.claim()) == (0, 1)
        helper.send(1, FAILED)
        return out

    monkeypatch.setattr(Share, "publish", dies)
    got = _expected(run, "accounts")
    _same_as_one_pass(got, run)
    # both computed by the report itself (its merging thread), every other range once
    assert {i for i, name in seen if not name.startswith("report-expected-part")} == {0, 1}
    assert sorted(i for i, _ in seen) == sorted({i for i, _ in seen})


def test_a_late_helper_or_one_with_other_failed_keys_computes_nothing(
    eager_celery, demo_plan, monkeypatch
):
    monkeypatch.setattr(expected_side, "REPORT_CHUNK", 25)
    run = _load(demo_plan)
    tokens: list[str] = []
    monkeypatch.setattr(prefetch, "_broker", lambda: settings.CELERY_BROKER_URL)
    monkeypatch.setattr(
        tasks.expected_part_task, "apply_async", lambda args, **_kw: tokens.append(args[0])
    )
    _expected(run, "accounts")
    assert tokens and all(prefetch.expected_help(t) == 0 for t in tokens)  # the report ended
    # a share whose failed keys are not the ones the helper reads: it claims nothing
    conn = client(settings.CELERY_BROKER_URL)
    entity = next(e for e in run_entities(run) if e.name == "accounts")
    job = prefetch._job(run.pk, entity, [], rec._failed_keys(run, entity), (set(), set(), []))
    job["ranges"] = [{"lower": None, "upper": None}]
    job["failed"] = "0" * 64
    share = Share.create(conn, job)
    assert prefetch.expected_help(share.token) == 0
    assert share.claimed() == 0
    share.end()


def test_a_part_travels_exactly():
    keys = ["a", "", "k", "\x00z", "ü"]
    values = pd.array(["x", None, "y\n", "", "ß"], dtype=TEXT)
    rows = pd.DataFrame({"a": values, "b": values}, index=pd.Index(keys, dtype=object))
    spec = expected_side.SampleSpec(pct=40.0, n=None, seed=1)
    part = expected_side._part(rows, ({"a"}, {"b"}, [spec]))
    part.sums = {"a": Decimal("-12.50")}
    # a key Arrow's UTF-8 refuses (a lone surrogate) travels as exact bytes
    odd = pd.Index(["k\ud800"], dtype=object)
    part.picked[(1.0, None, 2)] = pd.DataFrame({"a": pd.array(["v"], dtype=TEXT)}, index=odd)
    back = part_of(part_bytes(part))
    assert (back.rows, back.sums, back.counts) == (part.rows, part.sums, part.counts)
    for kind in ("smallest", "picked"):
        want, got = getattr(part, kind), getattr(back, kind)
        assert want.keys() == got.keys()
        for key, frame in want.items():
            assert list(got[key].index) == list(frame.index)
            assert got[key].columns.tolist() == frame.columns.tolist()
            for column in frame.columns:
                assert got[key][column].tolist() == frame[column].tolist()
    assert part_of(part_bytes(Part())).rows == 0


def test_without_a_broker_the_report_computes_every_range(eager_celery, demo_plan, monkeypatch):
    monkeypatch.setattr(expected_side, "REPORT_CHUNK", 25)
    run = _load(demo_plan)
    seen = _by_thread(monkeypatch)
    monkeypatch.setattr(prefetch, "_broker", lambda: "redis://127.0.0.1:1/0")  # nobody there
    got = _expected(run, "accounts")
    _same_as_one_pass(got, run)
    assert seen and all(name.startswith("report-expected-part") for _, name in seen)


def test_the_helper_is_asked_before_the_failed_keys_are_read(eager_celery, demo_plan, monkeypatch):
    # the helper reads its own failed keys: asked first, it does so while the leader reads its
    monkeypatch.setattr(expected_side, "REPORT_CHUNK", 25)
    run = _load(demo_plan)
    order: list[str] = []
    read = rec._failed_keys

    def failed_keys(run, entity):
        if threading.current_thread() is threading.main_thread():
            order.append(f"leader reads {entity.name}")
        return read(run, entity)

    monkeypatch.setattr(rec, "_failed_keys", failed_keys)
    helper = Helper(monkeypatch)
    start = tasks.expected_part_task.apply_async

    def asked(args, **kwargs):
        order.append("helper asked")
        start(args, **kwargs)

    monkeypatch.setattr(tasks.expected_part_task, "apply_async", asked)
    got = _expected(run, "accounts")
    helper.join()
    assert order[0] == "helper asked", order
    assert sum(helper.computed) >= 1  # it took part, with the failed keys it read itself
    _same_as_one_pass(got, run)


def test_the_key_ranges_are_listed_while_the_failed_keys_are_read(
    eager_celery, demo_plan, monkeypatch
):
    monkeypatch.setattr(expected_side, "REPORT_CHUNK", 25)
    run = _load(demo_plan)
    listed = threading.Event()
    key_ranges = getattr(prefetch.Reader, "key_ranges", None)

    def listing(reader, entity):
        listed.set()
        return key_ranges(reader, entity)

    monkeypatch.setattr(prefetch.Reader, "key_ranges", listing, raising=False)
    read = rec._failed_keys
    seen: list[bool] = []

    def failed_keys(run, entity):
        if threading.current_thread() is threading.main_thread() and not seen:
            seen.append(listed.wait(10))  # the expected side's thread lists them meanwhile
        return read(run, entity)

    monkeypatch.setattr(rec, "_failed_keys", failed_keys)
    got = _expected(run, "accounts")
    assert seen == [True]
    _same_as_one_pass(got, run)


def test_a_helper_asked_early_does_nothing_when_the_ranges_never_come(
    eager_celery, demo_plan, monkeypatch
):
    monkeypatch.setattr(expected_share, "JOB_WAIT", 0.3)
    run = _load(demo_plan)
    conn = client(settings.CELERY_BROKER_URL)
    # the leader ended the share before publishing (one range only, an error, a cancel)
    ended = Share.reserve(conn, {"run": run.pk, "entity": "accounts"})
    ended.end()
    assert prefetch.expected_help(ended.token) == 0
    # the leader never published (it died): the helper gives up after JOB_WAIT
    silent = Share.reserve(conn, {"run": run.pk, "entity": "accounts"})
    assert prefetch.expected_help(silent.token) == 0
    assert silent.claimed() == 0
    silent.end()


def test_a_report_of_one_key_range_ends_the_share_its_helper_was_asked_for(
    eager_celery, demo_plan, monkeypatch
):
    run = _load(demo_plan)  # every entity in one key range: nothing to share
    tokens: list[str] = []
    monkeypatch.setattr(prefetch, "_broker", lambda: settings.CELERY_BROKER_URL)
    monkeypatch.setattr(
        tasks.expected_part_task, "apply_async", lambda args, **_kw: tokens.append(args[0])
    )
    _expected(run, "accounts")
    assert len(tokens) == 1  # asked at the start, for the first entity only
    assert Share.head(client(settings.CELERY_BROKER_URL), tokens[0]) is None
    assert prefetch.expected_help(tokens[0]) == 0
