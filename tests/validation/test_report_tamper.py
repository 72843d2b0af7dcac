"""Issue 20: the report got faster (column-wise regex, no failure records built, Arrow rows), but
what it proves against stays the independent re-derivation of the source through the rules —
never the ledger's own hashes: a cell changed in the target together with a ledger forged to
match it still fails the report."""

from __future__ import annotations

import pytest

from runs.enums import RunStatus
from runs.services import run_create
from runs.services.state import run_entities
from tests.support import pg
from validation import reconciliation as rec
from validation.models import ValidationResult, ValidationRule
from validation.services import run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _rule(plan, name, kind, entity, column="", **params):
    return ValidationRule.objects.create(
        plan=plan,
        name=name,
        phase="post",
        kind=kind,
        entity=entity,
        column=column,
        params=params,
        severity="blocking",
    )


def _statuses(run) -> dict[str, str]:
    return {
        r.rule.name: r.status
        for r in ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    }


def test_tampered_cell_fails_the_report_even_with_a_forged_ledger_hash(
    eager_celery, demo_plan, demo_target_db
):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    demo_plan.validation_rules.filter(phase="post").update(enabled=False)
    _rule(demo_plan, "hashes", "checksum", "accounts")
    _rule(demo_plan, "every row", "sample_compare", "accounts", pct=100.0)
    _rule(demo_plan, "statuses", "category_count_match", "accounts", "account_status")
    assert run_report_build(run=run).verdict == "pass"
    assert set(_statuses(run).values()) == {"passed"}

    # the ZIP (checked by regex_validate in the run) and the status of one row changed...
    key = pg.query(demo_target_db, "SELECT min(id)::text FROM accounts")[0][0]
    pg.query(
        demo_target_db,
        "UPDATE accounts SET billing_postal_code = '00000', account_status = CASE "
        "account_status WHEN 'Active' THEN 'Inactive' ELSE 'Active' END WHERE id = %s::bigint",
        (key,),
    )
    # ...and the ledger's row hash of that row forged to the changed row's hash
    entity = next(e for e in run_entities(run) if e.name == "accounts")
    ctx = rec.RunContext(run=run)
    forged = ctx.target.row_hashes(
        "accounts", "id", [key], columns=[f.target for f in entity.fields]
    )
    ctx.target.close()
    changed = pg.query(
        demo_target_db,
        "UPDATE mp_ledger.batch SET inserted_hashes[array_position(inserted_keys, %s)] = %s "
        "WHERE entity = 'accounts' AND %s = ANY(inserted_keys) RETURNING 1",
        (key, forged[key], key),
    ) + pg.query(
        demo_target_db,
        "UPDATE mp_ledger.row SET row_hash = %s WHERE entity = 'accounts' AND target_key = %s "
        "RETURNING 1",
        (forged[key], key),
    )
    assert len(changed) == 1

    report = run_report_build(run=run)
    statuses = _statuses(run)
    assert statuses["hashes"] == "passed"  # the forged ledger fools a hash-only proof...
    # ...not the re-derivation: the row's fields and the status counts differ from intent
    assert (statuses["every row"], statuses["statuses"]) == ("failed", "failed")
    assert report.verdict == "fail"
    found = ValidationResult.objects.get(run=run, rule__name="every row").details["differences"]
    assert {d["field"] for d in found} >= {"billing_postal_code", "account_status"}
