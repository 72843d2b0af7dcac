"""Delta runs apply each entity's delete policy to rows deleted in the source (real PostgreSQL
source and target, eager Celery): counted as ``deleted``, ledgered, rolled back exactly."""

from __future__ import annotations

import pytest

from runs.connections import connector_for
from runs.enums import BatchKind, RunStatus
from runs.models import Batch, Rollback
from runs.services import run_create, run_rollback_request
from tests.support import pg

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
