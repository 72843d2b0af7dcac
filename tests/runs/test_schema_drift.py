"""Schema drift between a plan version and the live source/target is refused, never guessed."""

from __future__ import annotations

import sqlite3

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from mappings.models import PlanVersion
from mappings.services import plan_version_create
from mappings.services_drift import plan_version_drift
from migration_planner.lib.errors import ApplicationError
from runs.enums import RunStatus
from runs.models import Run
from runs.services import run_create
from tests.support import pg

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

RENAMED = (
    "source table “customers”, column “Legacy_Notes”: column missing, was TEXT, now missing "
    "(used by field description)"
)


@pytest.fixture
def sqlite_plan(sqlite_demo_plan):
    return sqlite_demo_plan


def _sqlite(path, statement: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()


def _rename_notes(path) -> None:
    _sqlite(path, 'ALTER TABLE customers RENAME COLUMN "Legacy_Notes" TO "Notes_Legacy"')


def test_renamed_source_column_is_refused_not_read_as_literal(eager_celery, sqlite_plan):
    plan, source, target = sqlite_plan
    first = run_create(plan=plan, user=None, mode="dry_run")  # warms the connectors' caches
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED, first.error
    _rename_notes(source)
    with pytest.raises(ApplicationError) as refused:
        run_create(plan=plan, user=None, mode="dry_run")
    assert RENAMED in refused.value.message
    assert refused.value.extra["drift"][0] | {"breaks": None} == {
        "side": "source",
        "table": "customers",
        "column": "Legacy_Notes",
        "change": "column missing",
        "was": "TEXT",
        "now": "missing",
        "breaks": None,
        "severity": "blocking",
        "blocking": True,
    }
    assert Run.objects.count() == 1
    assert sqlite3.connect(target).execute("SELECT count(*) FROM accounts").fetchone() == (0,)


def test_drift_after_launch_fails_the_run_before_any_write(eager_celery, sqlite_plan):
    plan, source, target = sqlite_plan
    version = plan_version_create(plan=plan, note="built")
    _rename_notes(source)
    run = Run.objects.create(plan=plan, version=version, target=plan.target, mode="load")
    from runs.services import run_prepare

    run_prepare(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert RENAMED in run.error
    assert run.batches.count() == 0
    assert sqlite3.connect(target).execute("SELECT count(*) FROM accounts").fetchone() == (0,)


def test_new_source_column_is_shown_not_blocking(eager_celery, sqlite_plan):
    plan, source, _ = sqlite_plan
    version = plan_version_create(plan=plan, note="built")
    _sqlite(source, "ALTER TABLE customers ADD COLUMN Loyalty_Tier TEXT")
    report = plan_version_drift(version=version)
    added = [d for d in report.items if d.column == "Loyalty_Tier"]
    assert [(d.side, d.change, d.severity, d.now) for d in added] == [
        ("source", "added", "info", "TEXT")
    ]
    assert report.blocking == []
    run = run_create(plan=plan, user=None, mode="dry_run")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error


def test_retyped_target_column_refuses_launch_api_and_cli(
    eager_celery, demo_plan, demo_target_db, analyst
):
    version = plan_version_create(plan=demo_plan, note="built")
    stored = {c["name"]: c["type"] for c in version.schemas["target"]["accounts"]["columns"]}
    assert stored["name"] == "character varying(80)"
    pg.query(demo_target_db, "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(20)")
    expected = (
        "target table “accounts”, column “name”: retyped, was character varying(80) NOT NULL, "
        "now character varying(20) NOT NULL (used by field name)"
    )
    client = APIClient()
    client.force_authenticate(analyst)
    body = {"plan": demo_plan.slug, "target": demo_plan.target.name, "mode": "load"}
    response = client.post("/api/runs/", body, format="json")
    assert response.status_code == 400
    assert expected in response.json()["detail"]
    with pytest.raises(CommandError) as cli:
        call_command("run_plan", demo_plan.slug, "--inline")
    assert expected in str(cli.value)
    assert Run.objects.count() == 0
    assert pg.query(demo_target_db, "SELECT count(*) FROM accounts") == [(0,)]


def test_version_without_stored_schema_still_refuses_missing_columns(eager_celery, sqlite_plan):
    plan, source, _ = sqlite_plan
    version = plan_version_create(plan=plan, note="built")
    PlanVersion.objects.filter(pk=version.pk).update(schemas={})
    version.refresh_from_db()
    _rename_notes(source)
    report = plan_version_drift(version=version)
    assert report.stored is False
    assert [d.text() for d in report.blocking] == [
        "source table “customers”, column “Legacy_Notes”: column missing, was in the plan, "
        "now missing (used by field description)"
    ]


def test_drift_page_shows_what_breaks_and_new_columns(client, sqlite_plan, analyst, viewer):
    plan, source, _ = sqlite_plan
    plan_version_create(plan=plan, note="built")
    _rename_notes(source)
    client.force_login(viewer)
    page = client.get(f"/plans/{plan.slug}/drift/").content.decode()
    assert "1 blocking change" in page
    assert "<code>Legacy_Notes</code>" in page and "field description" in page
    assert "<code>Notes_Legacy</code>" in page  # the renamed column shows as added, not blocking
    assert client.post(f"/plans/{plan.slug}/drift/rebaseline/").status_code == 403
    client.force_login(analyst)
    response = client.post(f"/plans/{plan.slug}/drift/rebaseline/")
    assert response.status_code == 302
    assert plan.versions.count() == 2
    page = client.get(response.url).content.decode()
    assert "1 blocking change" in page  # a new baseline cannot hide a column the plan uses
