"""Key-level reconciliation on SQLite targets (the default demo's embedded setup)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from django.contrib.auth.models import User

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import System
from runs.enums import RunStatus
from runs.services import run_create
from validation.models import RunReport
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def sqlite_plan(tmp_path):
    source, target = tmp_path / "legacy.sqlite3", tmp_path / "new.sqlite3"
    legacy_crm.build_source(f"sqlite:///{source}", rows=200, seed=11)
    legacy_crm.build_target(f"sqlite:///{target}")
    src = System.objects.create(
        name="Legacy (file)", kind="sqlite", path=str(source), role="source"
    )
    tgt = System.objects.create(
        name="New (file)", kind="sqlite", path=str(target), role="target", environment="uat"
    )
    plan, _ = demo_plan_install(
        source=src,
        target=tgt,
        owner=User.objects.create(username="o"),
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    return plan, target


def test_sqlite_target_report_catches_tampered_rows(eager_celery, sqlite_plan):
    plan, target = sqlite_plan
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    clean = RunReport.objects.get(run=run)
    assert all(d["clean"] for d in clean.data["key_diffs"].values())
    assert "skipped" not in clean.data["key_diffs"]["accounts"]
    assert clean.verdict == "pass"
    conn = sqlite3.connect(target)
    ids = [r[0] for r in conn.execute("SELECT id FROM accounts ORDER BY id")]
    conn.execute("UPDATE accounts SET name = 'Tampered' WHERE id = ?", (ids[2],))
    conn.execute("DELETE FROM contacts WHERE account_id = ?", (ids[5],))
    conn.execute("DELETE FROM accounts WHERE id = ?", (ids[5],))
    conn.execute(
        "INSERT INTO accounts (id, account_number, name, account_status) "
        "VALUES (?, 'X-1', 'Intruder', 'Active')",
        (ids[-1] + 3,),
    )
    conn.commit()
    conn.close()
    diff = run_report_build(run=run).data["key_diffs"]["accounts"]
    assert (diff["changed_keys"], diff["missing_keys"], diff["extra_keys"]) == (
        [str(ids[2])],
        [str(ids[5])],
        [str(ids[-1] + 3)],
    )


def test_sqlite_rerun_report_answers_for_the_rows_it_found_unchanged(eager_celery, sqlite_plan):
    from validation.models import ValidationResult

    def post(run) -> dict[str, tuple[str, str, str]]:
        results = ValidationResult.objects.filter(run=run, rule__phase="post").order_by("id")
        return {r.rule.name: (r.status, r.expected, r.observed) for r in results}

    plan, target = sqlite_plan
    first = run_create(plan=plan, user=None, mode="load")
    again = run_create(plan=plan, user=None, mode="load")
    again.refresh_from_db()
    assert again.status == RunStatus.SUCCEEDED, again.error
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, again.loaded)
    assert post(again) == post(first) and RunReport.objects.get(run=again).verdict == "pass"
    conn = sqlite3.connect(target)
    conn.execute(
        "UPDATE accounts SET account_status = 'Inactive' WHERE id = "
        "(SELECT min(id) FROM accounts WHERE account_status = 'Active')"
    )
    conn.commit()
    conn.close()
    report = run_report_build(run=again)
    assert post(again)["Accounts per status match"][0] == "failed"
    assert len(report.data["key_diffs"]["accounts"]["changed_keys"]) == 1
