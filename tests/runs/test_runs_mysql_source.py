"""The demo plan read from a MySQL (MariaDB) copy of the legacy CRM: same run as from PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest

from mappings.demo import legacy_crm
from mappings.models import System
from runs.connections import connector_for
from runs.enums import RunStatus
from runs.models import FailedRecord
from runs.services import run_create, run_rollback_request
from tests.runs.conftest import DEMO_ROWS, _pg_system
from tests.support import mysql, pg
from validation.models import RunReport, ValidationResult

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
TABLES = ("accounts", "contacts", "orders")


@pytest.fixture
def pg_source():
    """A fresh copy of the demo legacy CRM in PostgreSQL (the session's copy is shared and
    other tests change rows in it)."""
    with pg.throwaway_database("runs_pg_src") as name:
        legacy_crm.build_source(pg.url_for(name), rows=DEMO_ROWS, seed=7)
        yield _pg_system("Legacy CRM (fresh)", name, "dev", "source")


@pytest.fixture
def mysql_source():
    """The demo legacy CRM (same rows and seed as the PostgreSQL one) in a MariaDB database."""
    with mysql.throwaway_database("runs_my_src") as name:
        legacy_crm.build_source(mysql.url_for(name), rows=DEMO_ROWS, seed=7)
        p = mysql.admin_params()
        system = System(
            name="Legacy CRM (MySQL)",
            kind="mysql",
            host=p["host"],
            port=p["port"],
            database=name,
            username=p["user"],
            role="source",
        )
        system.set_secret(p["password"])
        system.save()
        yield name, system


def _run(plan):
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _outcome(run):
    failures = Counter(
        FailedRecord.objects.filter(run=run).values_list(
            "entity", "field", "category", "source_key"
        )
    )
    return (
        (run.extracted, run.loaded, run.failed, run.filtered, run.duplicates, run.entity_totals),
        failures,
    )


def _validation(run):
    """The run report's verdict and every check's (phase, kind, entity, status)."""
    results = ValidationResult.objects.filter(run=run).select_related("rule")
    return RunReport.objects.get(run=run).verdict, sorted(
        (r.rule.phase, r.rule.kind, r.rule.entity, r.status) for r in results
    )


def _rows(dbname: str) -> list[list[tuple]]:
    """The target's rows with surrogate ids replaced by the parents' external keys (a rolled
    back run leaves the id sequences advanced, so ids differ between two equal runs)."""
    return [
        pg.query(dbname, q)
        for q in (
            "SELECT account_number, name, billing_street, billing_city, billing_state, "
            "billing_postal_code, phone, email, legacy_created_date::text, account_status, "
            "description, legacy_uuid::text FROM accounts ORDER BY 1",
            "SELECT c.legacy_contact_id, a.account_number, c.first_name, c.last_name, c.email, "
            "c.phone, c.title FROM contacts c JOIN accounts a ON a.id = c.account_id ORDER BY 1",
            "SELECT o.legacy_order_id, c.legacy_contact_id, o.order_date::text, "
            "o.total_amount::text, o.currency, o.status FROM orders o "
            "JOIN contacts c ON c.id = o.contact_id ORDER BY 1",
        )
    ]


def _checksums(plan):
    target = connector_for(plan.target)
    return {t: target.table_checksum(t, ["id"]) for t in TABLES}


def test_mysql_source_loads_what_the_postgresql_source_loads(
    eager_celery, demo_plan, demo_target_db, pg_source, mysql_source
):
    """Same data in MariaDB and PostgreSQL: same counts, same failed records, same target rows
    (ids aside), and the MySQL run rolls back to the empty target like any other."""
    demo_plan.source = pg_source
    demo_plan.save()
    empty = _checksums(demo_plan)
    from_pg = _run(demo_plan)
    pg_outcome, pg_target = _outcome(from_pg), _rows(demo_target_db)
    pg_validation = _validation(from_pg)
    run_rollback_request(run=from_pg, user=None)
    assert _checksums(demo_plan) == empty

    demo_plan.source = mysql_source[1]
    demo_plan.save()
    from_my = _run(demo_plan)
    assert _outcome(from_my) == pg_outcome
    assert pg_outcome[0][0] == 1800 and pg_outcome[0][2] > 0
    assert _rows(demo_target_db) == pg_target
    # pre-checks (counts, duplicates on the source) and the reconciliation report (source
    # re-read in batches, key diff, checksums) come out the same, and pass
    assert _validation(from_my) == pg_validation
    assert pg_validation[0] == "pass" and len(pg_validation[1]) == 10
    assert [len(rows) for rows in pg_target] == [255, 470, 707]
    assert sum(pg.query(demo_target_db, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES) == (
        from_my.loaded
    )
    rollback = run_rollback_request(run=from_my, user=None)
    rollback.refresh_from_db()
    assert rollback.status == "verified"
    assert _checksums(demo_plan) == empty
