"""Re-runs settle a wholly unchanged key range by its digest (issue 15's ≤ 0.35× re-run): the
source server still reads and hashes every row of the range but returns one digest; the
range is carried whole only when the latest batch record with that digest still finds every
target row it answers for as written and all its failures still open. Anything else — one
changed source row, a target row edited by hand, a failure handled in the queue — sends the
range through the per-row comparison. Real PostgreSQL source and target, eager Celery;
counts, never clocks (pass-through spies count the calls)."""

from __future__ import annotations

import pytest

from runs.engine.connectors.postgres.base import PostgresConnector
from runs.models import FailedRecord, Run
from runs.selectors.carried import failed_records_of
from runs.services import run_rollback_request
from tests.runs import test_rerun_unchanged as unchanged
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
# the fixtures of the re-run tests: the demo plan (accounts, batches of 100) over a source and
# a target this module may change, and the spy on the rows the transform gets
source_db, target_db, plan, transformed = (
    unchanged.source_db,
    unchanged.target_db,
    unchanged.plan,
    unchanged.transformed,
)
_load = unchanged._load


@pytest.fixture
def per_row(monkeypatch):
    """Key ranges compared row by row (the source's per-row hashes fetched): a list of calls."""
    calls: list[int] = []
    real = PostgresConnector.source_row_hashes

    def spy(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PostgresConnector, "source_row_hashes", spy)
    return calls


def _coerced_batches(run: Run) -> int:
    """Batches of ``run`` holding a row the target coerced (tried again on every re-run)."""
    records = FailedRecord.objects.filter(run=run, category="coerced_by_target")
    return records.values("batch_id").distinct().count()


def _states(target_db: str, run: Run) -> dict[str, tuple]:
    """Range digest -> the state arrays of each batch record of ``run``."""
    rows = pg.query(
        target_db,
        "SELECT range_digest, state_keys, state_targets, source_hashes, row_hashes, "
        "target_xmins FROM mp_ledger.batch WHERE run_id = %s",
        (str(run.uuid),),
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def test_an_unchanged_rerun_carries_each_range_whole_without_per_row_hashes(
    eager_celery, plan, target_db, per_row, transformed
):
    first = _load(plan)
    per_row.clear()
    transformed.clear()
    again = _load(plan)
    assert len(per_row) == _coerced_batches(first) < first.batches.count()
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, first.loaded)
    assert (again.failed, again.filtered, again.extracted) == (
        first.failed,
        first.filtered,
        first.extracted,
    )
    for b in again.batches.all():
        assert b.extracted == b.loaded + b.failed + b.filtered + b.duplicates, b.seq
    assert failed_records_of(run=again).count() == again.failed
    # a range carried whole keeps the earlier record's state arrays as they were (copied on
    # the server), so the next run compares against the same state
    before, after = _states(target_db, first), _states(target_db, again)
    assert all(v[0] for v in after.values())
    kept = [d for d, v in after.items() if v == before.get(d)]
    assert len(kept) >= first.batches.count() - len(per_row) > 0
    # and a third run carries the second run's ranges (the latest record with the digest)
    per_row.clear()
    third = _load(plan)
    assert len(per_row) == _coerced_batches(again)
    assert (third.unchanged, third.failed) == (first.loaded, first.failed)


def _rename_one(source_db: str, target_db: str) -> str:
    """Rename the source customer of the 121st loaded account; its key."""
    (key,) = pg.query(
        target_db, "SELECT account_number FROM accounts ORDER BY account_number OFFSET 120 LIMIT 1"
    )[0]
    pg.query(
        source_db,
        'UPDATE customers SET "Cust_Name" = \'Renamed Customer\' WHERE "Customer_ID" = %s',
        (int(key),),
    )
    return key


def test_one_changed_row_in_a_range_is_transformed_and_written(
    eager_celery, plan, source_db, target_db, per_row, transformed
):
    first = _load(plan)
    key = _rename_one(source_db, target_db)
    per_row.clear()
    transformed.clear()
    again = _load(plan)
    assert len(per_row) == 1 + _coerced_batches(first)  # only that key's range row by row
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, first.loaded - 1)
    assert pg.query(
        target_db, "SELECT account_number FROM accounts WHERE name = 'Renamed Customer'"
    ) == [(key,)]


def test_a_target_row_edited_by_hand_in_an_unchanged_range_is_rewritten(
    eager_celery, plan, target_db, per_row
):
    first = _load(plan)
    (row_id, intended) = pg.query(
        target_db, "SELECT id, name FROM accounts ORDER BY id OFFSET 150 LIMIT 1"
    )[0]
    pg.query(target_db, "UPDATE accounts SET name = 'Edited by hand' WHERE id = %s", (row_id,))
    per_row.clear()
    again = _load(plan)
    assert len(per_row) == 1 + _coerced_batches(first)
    assert (again.inserted, again.updated) == (0, 1)
    assert pg.query(target_db, "SELECT name FROM accounts WHERE id = %s", (row_id,)) == [
        (intended,)
    ]


def test_a_failure_handled_in_the_queue_sends_its_range_row_by_row(
    eager_celery, plan, per_row, transformed
):
    first = _load(plan)
    carriable = FailedRecord.objects.filter(run=first).exclude(category="coerced_by_target")
    record = carriable.order_by("id").first()
    FailedRecord.objects.filter(pk=record.pk).update(status="ignored", ignore_reason="known")
    per_row.clear()
    transformed.clear()
    again = _load(plan)
    coerced = FailedRecord.objects.filter(run=first, category="coerced_by_target")
    same_batch = coerced.filter(batch_id=record.batch_id).exists()
    assert len(per_row) == _coerced_batches(first) + (0 if same_batch else 1)
    # the ignored key is transformed again (and fails again); the others are carried
    fresh = FailedRecord.objects.filter(run=again, carried_from__isnull=True)
    assert record.source_key in set(fresh.values_list("source_key", flat=True))
    assert again.failed == first.failed


@pytest.fixture
def applied(monkeypatch):
    """Key-map pairs applied from batch records' arrays (a pass-through spy): run id -> pairs."""
    from runs.engine.connectors.postgres import ledger

    pairs: dict[str, int] = {}
    real = ledger._keymap_apply

    def spy(cur, namespace, entity, pending):
        for run_id, batch_id in pending:
            cur.execute(
                "SELECT coalesce(cardinality(keymap_source), 0) FROM mp_ledger.batch "
                "WHERE run_id = %s AND batch_id = %s",
                (run_id, batch_id),
            )
            pairs[run_id] = pairs.get(run_id, 0) + cur.fetchone()[0]
        return real(cur, namespace, entity, pending)

    monkeypatch.setattr(ledger, "_keymap_apply", spy)
    return pairs


def _keymap(target_db: str) -> list[tuple]:
    return pg.query(
        target_db,
        "SELECT source_key, target_key, run_id FROM mp_ledger.keymap ORDER BY source_key",
    )


def test_carried_keys_are_not_applied_to_the_key_map_again_and_it_still_maps_every_row(
    eager_celery, plan, source_db, target_db, operator, applied, per_row
):
    first = _load(plan)
    connector = PostgresConnector({**pg.admin_params(), "dbname": target_db})
    accounts = pg.query(target_db, "SELECT id::text, account_number FROM accounts")
    mapped = connector.keymap_sources(plan.slug, "accounts", [a[0] for a in accounts])
    assert mapped == {str(t): s for t, s in accounts} and len(mapped) == first.loaded
    assert applied[str(first.uuid)] == first.loaded
    before = _keymap(target_db)
    _rename_one(source_db, target_db)
    per_row.clear()
    again = _load(plan)
    assert connector.keymap_sources(plan.slug, "accounts", [a[0] for a in accounts]) == mapped
    # only the ranges compared row by row (the changed row's, those holding a row the target
    # coerced) load rows and so add pairs; a range carried whole adds none
    ranges = again.batches.count()
    assert 0 < len(per_row) < ranges
    assert 0 < applied.get(str(again.uuid), 0) <= len(per_row) * plan.batch_size
    assert _keymap(target_db) == before  # every pair as the first run mapped it
    # the re-run rolled back, the first run's key map is whole; a third run carries again
    rollback = run_rollback_request(run=again, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == "verified"
    assert _keymap(target_db) == before
    third = _load(plan)
    assert connector.keymap_sources(plan.slug, "accounts", [a[0] for a in accounts]) == mapped
    assert (third.loaded, third.updated) == (first.loaded, 1)


def test_a_reruns_pre_run_checksum_is_the_target_as_the_first_run_left_it(
    eager_celery, plan, target_db, operator
):
    """Planning takes the target's checksum on a connection of its own while it plans the key
    ranges: it is still the target before the run, and the rollback proves against it."""
    first = _load(plan)
    connector = PostgresConnector({**pg.admin_params(), "dbname": target_db})
    left = connector.table_checksum("accounts", ["id"])
    pg.query(
        target_db,
        "UPDATE accounts SET name = 'Edited by hand' WHERE id = (SELECT min(id) FROM accounts)",
    )
    edited = connector.table_checksum("accounts", ["id"])
    again = _load(plan)
    assert first.pre_checksums == {"accounts": {"rows": 0, "digest": "h1:" + "0" * 16}}
    assert again.pre_checksums == {"accounts": {"rows": edited.rows, "digest": edited.digest}}
    assert (edited.rows, edited.digest) != (left.rows, left.digest)
    rollback = run_rollback_request(run=again, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == "verified"
    assert connector.table_checksum("accounts", ["id"]) == edited


def test_a_run_whose_pre_run_checksum_has_the_earlier_md5_form_still_rolls_back_verified(
    eager_celery, plan, target_db, operator
):
    """A run recorded before the checksum's form changed (md5 of each row's text, 16 hex
    digits without "h1:") is proved against in its own form: back to those rows, verified."""
    _load(plan)
    connector = PostgresConnector({**pg.admin_params(), "dbname": target_db})
    before = connector.table_checksum("accounts", ["id"])
    ((total,),) = pg.query(
        target_db,
        "SELECT coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint), 0)::text "
        "FROM accounts AS t",
    )
    old = f"{int(total) & (2**64 - 1):016x}"
    again = _load(plan)
    assert again.pre_checksums == {"accounts": {"rows": before.rows, "digest": before.digest}}
    again.pre_checksums = {"accounts": {"rows": before.rows, "digest": old}}
    again.save(update_fields=["pre_checksums"])
    rollback = run_rollback_request(run=again, user=operator)
    rollback.refresh_from_db()
    assert rollback.status == "verified"
