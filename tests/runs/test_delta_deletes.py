"""Delta runs apply each entity's delete policy to rows deleted in the source (real PostgreSQL
source and target, eager Celery): counted as ``deleted``, ledgered, rolled back exactly."""

from __future__ import annotations

import pytest

from runs.connections import connector_for
from runs.enums import BatchKind, RunStatus
from runs.models import Batch, Rollback
from runs.services import run_create, run_rollback_request
from tests.runs.conftest import sync_plan  # noqa: F401 - a fixture used as an argument
from tests.support import pg
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _launch(plan, mode="load", **kwargs):
    run = run_create(plan=plan, user=None, mode=mode, **kwargs)
    run.refresh_from_db()
    return run


def _orders_checksum(plan):
    return connector_for(plan.target).table_checksum("orders", ["id"])


def test_delta_run_deletes_target_rows_of_source_deletes_and_rollback_restores(
    eager_celery, demo_plan, demo_source_db, demo_target_db
):
    full = _launch(demo_plan)
    assert full.status == RunStatus.SUCCEEDED, full.error
    loaded = [
        r[0]
        for r in pg.query(demo_target_db, "SELECT legacy_order_id FROM orders ORDER BY id LIMIT 7")
    ]
    demo_plan.entities.filter(name="orders").update(delete_policy="delete")
    # the source database is shared by the session: park the rows and put them back after
    pg.query(
        demo_source_db,
        'CREATE TABLE orders_parked AS SELECT * FROM orders WHERE "Order_ID"::text = ANY(%s)',
        (loaded,),
    )
    pg.query(demo_source_db, 'DELETE FROM orders WHERE "Order_ID"::text = ANY(%s)', (loaded,))
    try:
        before = _orders_checksum(demo_plan)
        delta = _launch(demo_plan, mode="delta", scope_entity="orders")
        assert delta.status == RunStatus.SUCCEEDED, delta.error
        assert delta.deleted == 7
        assert Batch.objects.get(run=delta, kind=BatchKind.DELETES).deleted == 7
        assert pg.query(
            demo_target_db, "SELECT count(*) FROM orders WHERE legacy_order_id = ANY(%s)", (loaded,)
        ) == [(0,)]
        assert _orders_checksum(demo_plan).rows == before.rows - 7
        again = _launch(demo_plan, mode="delta", scope_entity="orders")
        assert (again.status, again.deleted) == (RunStatus.SUCCEEDED, 0)
        run_rollback_request(run=again, user=None)
        run_rollback_request(run=delta, user=None)
        assert Rollback.objects.get(run=delta).status == "verified"
        assert _orders_checksum(demo_plan) == before
    finally:
        pg.query(demo_source_db, "INSERT INTO orders SELECT * FROM orders_parked")
        pg.query(demo_source_db, "DROP TABLE orders_parked")


def test_load_run_never_deletes(eager_celery, demo_plan, demo_target_db):
    demo_plan.entities.filter(name="orders").update(delete_policy="delete")
    run = _launch(demo_plan)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert not Batch.objects.filter(run=run, kind=BatchKind.DELETES).exists()
    assert run.deleted == 0


def _diff(run) -> dict:
    report = run_report_build(run=run, reason="test")
    return report.verdict, report.data["key_diffs"]["src"]


def test_reconciliation_after_a_mark_delta_counts_marked_rows_and_flags_wrong_marks(
    eager_celery,
    sync_plan,  # noqa: F811 - the fixture imported above
):
    plan, src, tgt = sync_plan
    pg.query(tgt, "ALTER TABLE tgt ADD COLUMN deleted_at timestamptz")
    plan.entities.update(
        delete_policy="mark", delete_mark_column="deleted_at", delete_mark_value="now"
    )
    full = _launch(plan)
    assert full.status == RunStatus.SUCCEEDED, full.error
    pg.query(src, "DELETE FROM src WHERE id IN (3, 7, 11)")
    pg.query(src, "UPDATE src SET name = 'renamed' WHERE id = 20")  # the delta writes it
    delta = _launch(plan, mode="delta")
    assert (delta.status, delta.deleted) == (RunStatus.SUCCEEDED, 3), delta.error
    marked = pg.query(tgt, "SELECT ext FROM tgt WHERE deleted_at IS NOT NULL ORDER BY ext")
    assert marked == [("11",), ("3",), ("7",)]
    verdict, diff = _diff(delta)
    assert diff["clean"] and diff["marked"] == 3, diff  # marked as meant: neither extra nor changed
    assert verdict != "fail"
    # the target changed silently: a row the delta wrote got marked, one it marked lost it
    pg.query(tgt, "UPDATE tgt SET deleted_at = now() WHERE ext = '20'")
    pg.query(tgt, "UPDATE tgt SET deleted_at = NULL WHERE ext = '7'")
    verdict, diff = _diff(delta)
    assert (diff["clean"], verdict, diff["missing"], diff["marked"]) == (False, "fail", 0, 3)
    wrong = pg.query(tgt, "SELECT id FROM tgt WHERE ext IN ('7', '20') ORDER BY id")
    assert diff["changed_keys"] == [str(r[0]) for r in wrong]
