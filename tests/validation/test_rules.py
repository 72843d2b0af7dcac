"""Each rule kind passing and failing on crafted data; parameter checks; the pre-run gate."""

from __future__ import annotations

import pytest

from migration_planner.lib.errors import ApplicationError
from runs.engine.connectors.base.source import SqlSource
from runs.enums import RunStatus
from runs.services import run_create
from tests.support import pg
from tests.support.validation_rules import validation_rule as _rule
from validation.checks import NAMED_PATTERNS, rule_params_clean
from validation.column_scan import CHUNK_ROWS
from validation.models import RunReport, ValidationResult
from validation.services import prevalidation_execute, run_report_build

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _only(plan, *rules):
    plan.validation_rules.exclude(pk__in=[r.pk for r in rules]).update(enabled=False)


def test_pre_rules_pass_and_fail_on_the_legacy_source(demo_plan):
    rules = [
        _rule(demo_plan, "count ok", "row_count_range", "accounts", min=1, max=1000),
        _rule(demo_plan, "count bad", "row_count_range", "accounts", min=1, max=10),
        _rule(demo_plan, "id unique", "unique", "accounts", "Customer_ID"),
        _rule(demo_plan, "city unique", "unique", "accounts", "City"),
        _rule(demo_plan, "line2 any", "completeness", "accounts", "Address_Line2", min_pct=0),
        _rule(demo_plan, "line2 full", "completeness", "accounts", "Address_Line2", min_pct=100),
        _rule(
            demo_plan,
            "mail loose",
            "format",
            "accounts",
            "Email_Address",
            pattern="email",
            min_pct=0,
        ),
        _rule(demo_plan, "mail strict", "format", "accounts", "Email_Address", pattern="email"),
        _rule(demo_plan, "id digits", "format", "accounts", "Customer_ID", pattern=r"[0-9]+"),
    ]
    _only(demo_plan, *rules)
    results = {r.rule.name: r.status for r in prevalidation_execute(plan=demo_plan)}
    assert results == {
        "count ok": "passed",
        "count bad": "failed",
        "id unique": "passed",
        "city unique": "failed",
        "line2 any": "passed",
        "line2 full": "failed",
        "mail loose": "passed",
        "mail strict": "failed",
        "id digits": "passed",
    }


def test_failed_blocking_pre_rule_stops_the_run_before_writing(
    eager_celery, demo_plan, demo_target_db
):
    bad = _rule(demo_plan, "too many customers", "row_count_range", "accounts", max=10)
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "pre-validation failed: too many customers" in run.error
    assert pg.query(demo_target_db, "SELECT count(*) FROM accounts") == [(0,)]
    assert ValidationResult.objects.get(run=run, rule=bad).status == "failed"
    assert not RunReport.objects.filter(run=run).exists()


def test_warning_pre_rule_does_not_stop_the_run(eager_celery, demo_plan):
    _rule(
        demo_plan, "too many customers", "row_count_range", "accounts", severity="warning", max=10
    )
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error


def test_pre_rules_of_a_run_prepared_again_keep_one_set_of_results(eager_celery, demo_plan):
    rule = _rule(demo_plan, "count ok", "row_count_range", "accounts", min=1, max=1000)
    _only(demo_plan, rule)
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    prevalidation_execute(plan=demo_plan, run=run)  # what a run prepared again does
    assert ValidationResult.objects.filter(run=run, rule=rule).count() == 1
    prevalidation_execute(plan=demo_plan)  # without a run: a result of its own
    assert ValidationResult.objects.filter(rule=rule).count() == 2


def test_pre_rules_of_a_run_scan_in_the_key_ranges_its_planning_computed(
    eager_celery, demo_plan, monkeypatch
):
    rules = [
        _rule(demo_plan, "line2 full", "completeness", "accounts", "Address_Line2", min_pct=100),
        _rule(demo_plan, "mail strict", "format", "accounts", "Email_Address", pattern="email"),
    ]
    _only(demo_plan, *rules)
    alone = {r.rule.name: (r.status, r.observed) for r in prevalidation_execute(plan=demo_plan)}
    sizes: list[int] = []
    real = SqlSource.key_ranges

    def spy(self, table, key_cols, batch_size, **kwargs):
        sizes.append(batch_size)
        return real(self, table, key_cols, batch_size, **kwargs)

    monkeypatch.setattr(SqlSource, "key_ranges", spy)
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert CHUNK_ROWS not in sizes  # no key ranges of its own: the planned ones (2,000 rows)
    pre = ValidationResult.objects.filter(run=run, rule__in=rules)
    assert {r.rule.name: (r.status, r.observed) for r in pre} == alone
    assert alone["line2 full"][0] == alone["mail strict"][0] == "failed"


def test_a_runs_row_count_rule_takes_the_count_its_planning_read(
    eager_celery, demo_plan, monkeypatch
):
    rule = _rule(demo_plan, "count ok", "row_count_range", "accounts", min=1, max=1000)
    _only(demo_plan, rule)
    alone = {r.rule.name: (r.status, r.observed) for r in prevalidation_execute(plan=demo_plan)}
    counted: list[str] = []
    real = SqlSource.count

    def spy(self, table, **kwargs):
        counted.append(table)
        return real(self, table, **kwargs)

    monkeypatch.setattr(SqlSource, "count", spy)
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    # one count(*) of each source table, the planning's: the rule read no count of its own
    assert len(counted) == len(set(counted)) and "customers" in counted
    pre = ValidationResult.objects.filter(run=run, rule=rule)
    assert {r.rule.name: (r.status, r.observed) for r in pre} == alone


def _post_statuses(run) -> dict[str, str]:
    return {
        r.rule.name: r.status
        for r in ValidationResult.objects.filter(run=run, rule__phase="post").select_related("rule")
    }


def test_post_rules_fail_when_the_target_is_tampered(eager_celery, demo_plan, demo_target_db):
    run = run_create(plan=demo_plan, user=None, mode="load")
    run.refresh_from_db()
    rules = [
        _rule(demo_plan, "orders sum", "sum_match", "orders", "total_amount", tolerance=0.01),
        _rule(demo_plan, "status mix", "category_count_match", "accounts", "account_status"),
        _rule(demo_plan, "count exact", "row_count_match", "contacts", tolerance_pct=0),
        _rule(demo_plan, "all rows", "sample_compare", "accounts", pct=100, seed=1),
        _rule(
            demo_plan,
            "parents",
            "referential_integrity",
            "contacts",
            "account_id",
            parent="accounts",
        ),
        _rule(demo_plan, "hashes", "checksum", "orders"),
    ]
    _only(demo_plan, *rules)
    run_report_build(run=run)
    assert set(_post_statuses(run).values()) == {"passed"}
    fk = pg.query(
        demo_target_db,
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = 'contacts'::regclass",
    )[0][0]
    pg.query(demo_target_db, f'ALTER TABLE contacts DROP CONSTRAINT "{fk}"')
    pg.query(
        demo_target_db,
        "UPDATE orders SET total_amount = total_amount + 10 "
        "WHERE id = (SELECT min(id) FROM orders)",
    )
    pg.query(
        demo_target_db,
        "UPDATE accounts SET account_status = 'Inactive' "
        "WHERE id = (SELECT min(id) FROM accounts WHERE account_status = 'Active')",
    )
    pg.query(
        demo_target_db,
        "UPDATE contacts SET account_id = 999999 WHERE id = (SELECT min(id) FROM contacts)",
    )
    pg.query(
        demo_target_db,
        "DELETE FROM contacts WHERE id = (SELECT max(id) FROM contacts c "
        "WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.contact_id = c.id))",
    )
    run_report_build(run=run)
    assert _post_statuses(run) == {
        "orders sum": "failed",
        "status mix": "failed",
        "count exact": "failed",
        "all rows": "failed",
        "parents": "failed",
        "hashes": "failed",
    }


@pytest.mark.parametrize(
    ("kind", "column", "params", "field"),
    [
        ("row_count_range", "", {}, "min"),
        ("row_count_range", "", {"min": 5, "max": 2}, "max"),
        ("unique", "", {}, "column"),
        ("completeness", "x", {"min_pct": 120}, "min_pct"),
        ("completeness", "x", {"min_pct": "lots"}, "min_pct"),
        ("format", "x", {"pattern": "(["}, "pattern"),
        ("sample_compare", "", {"pct": 5, "n": 10}, "pct"),
        ("referential_integrity", "account_id", {}, "parent"),
        ("checksum", "", {"bogus": 1}, "bogus"),
    ],
)
def test_rule_params_clean_names_the_bad_field(kind, column, params, field):
    with pytest.raises(ApplicationError) as err:
        rule_params_clean(kind=kind, column=column, params=params)
    assert err.value.field == field


def test_rule_params_clean_types_values():
    assert rule_params_clean(
        kind="sample_compare", column="", params={"pct": "5", "seed": "3"}
    ) == {"pct": 5.0, "seed": 3}


def test_pre_rules_read_in_small_chunks_observe_the_same_figures(demo_plan, monkeypatch):
    from validation import column_scan

    rules = [
        _rule(demo_plan, "line2", "completeness", "accounts", "Address_Line2", min_pct=100),
        _rule(demo_plan, "mail", "format", "accounts", "Email_Address", pattern="email"),
        # a lookahead (stored before issue 17): RE2 refuses it, the rule reports an error
        _rule(
            demo_plan, "not test", "format", "accounts", "Email_Address", pattern=r"(?!test).*@.*"
        ),
        _rule(demo_plan, "city", "unique", "accounts", "City"),
    ]
    _only(demo_plan, *rules)

    def observed():
        return {
            r.rule.name: (r.status, r.observed, r.details)
            for r in prevalidation_execute(plan=demo_plan)
        }

    whole = observed()
    monkeypatch.setattr(column_scan, "CHUNK_ROWS", 7)
    assert observed() == whole
    assert whole["mail"][0] == "failed" and "do not" in whole["mail"][1]
    assert 0 < len(whole["mail"][2]["examples"]) <= 10
    assert whole["not test"][0] == "error" and "lookahead" in whole["not test"][1]
    assert whole["city"][0] == "failed" and whole["city"][2]["examples"]


def test_column_scan_takes_arrow_backed_columns_as_they_come():
    """PostgreSQL sources hand the scan Arrow-backed strings (extract_text): the same figures
    as from a column of Python strings."""
    import pandas as pd
    import pyarrow as pa

    from validation import column_scan

    values = ["a@b.io", None, "  ", " x@y.org ", "bad", ""]
    arrow = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(values)])))
    plain = pd.Series(values, dtype=object)
    for series in (arrow, plain):
        text = column_scan.pc.utf8_trim_whitespace(column_scan._arrow_text(series))
        filled, fmt = column_scan.FilledCount(), column_scan.FormatScan(NAMED_PATTERNS["email"])
        filled.add(text)
        fmt.add(text)
        assert (filled.rows, filled.filled) == (6, 3)
        assert (fmt.total, fmt.bad, fmt.examples) == (3, 1, ["bad"])


def test_column_checks_of_an_entity_share_one_scan_and_keep_their_own_errors(demo_plan):
    """Completeness and format rules of one entity are answered from one scan of the table;
    the figures are those each rule gets alone, and a rule that cannot run (a column the
    source lacks) is an error of its own without costing the others their results."""
    from mappings.services import plan_snapshot_build
    from runs.connections import connector_for
    from validation.checks import pre_check

    rules = [
        _rule(demo_plan, "line2", "completeness", "accounts", "Address_Line2", min_pct=90),
        _rule(demo_plan, "mail", "format", "accounts", "Email_Address", pattern="email"),
        _rule(demo_plan, "zip", "format", "accounts", "Zip_Code", pattern=r"[0-9]{5}"),
    ]
    _only(demo_plan, *rules)
    source = connector_for(demo_plan.source)
    entity = plan_snapshot_build(plan=demo_plan).entity("accounts")
    alone = {
        r.name: pre_check(
            kind=r.kind, params=r.params, column=r.column, entity=entity, source=source
        )
        for r in rules
    }
    together = {r.rule.name: r for r in prevalidation_execute(plan=demo_plan)}
    assert {n: (r.observed, r.details) for n, r in together.items()} == {
        n: (o.observed, o.details) for n, o in alone.items()
    }
    _rule(demo_plan, "nope", "completeness", "accounts", "No_Such_Column", min_pct=1)
    with_error = {r.rule.name: r for r in prevalidation_execute(plan=demo_plan)}
    assert with_error["nope"].status == "error"
    assert {n: with_error[n].observed for n in alone} == {n: o.observed for n, o in alone.items()}


def test_validation_rule_on_a_missing_column_is_refused(demo_plan, analyst):
    from validation.services import validation_rule_save

    plan = demo_plan
    with pytest.raises(ApplicationError, match="Column “Emial” does not exist in “customers”"):
        validation_rule_save(
            plan=plan,
            user=analyst,
            data={
                "name": "emails unique",
                "kind": "unique",
                "entity": "accounts",
                "column": "Emial",
            },
        )
    rule = validation_rule_save(
        plan=plan,
        user=analyst,
        data={
            "name": "emails unique",
            "kind": "unique",
            "entity": "accounts",
            "column": "Email_Address",
        },
    )
    assert rule.column == "Email_Address"


class _Reads:
    """A real connector, noting the key ranges it extracted and whether it was closed (a spy,
    not a mock)."""

    def __init__(self, connector, name: str, log: list) -> None:
        self._c, self._name, self._log = connector, name, log

    def __getattr__(self, attr):
        real = getattr(self._c, attr)
        if attr == "extract_text":

            def noted(table, columns, key_cols, key_range, **kwargs):
                self._log.append((self._name, key_range))
                return real(table, columns, key_cols, key_range, **kwargs)

            return noted
        if attr == "close":
            self._log.append((self._name, "closed"))
        return real


def test_column_scan_reads_every_other_chunk_through_a_second_connection(demo_plan):
    """The pre-run scan reads its key ranges through two connections at once (the run's
    other worker has nothing to do yet): the chunks come out in key order, the same as one
    connection reads them, and the helper's connection is closed after."""
    from mappings.services import plan_snapshot_build
    from runs.connections import connection_spec, connector_for
    from runs.engine.connectors import connect
    from validation.column_scan import column_chunks

    source = connector_for(demo_plan.source)
    entity = plan_snapshot_build(plan=demo_plan).entity("accounts")
    ranges = {"accounts": source.key_ranges(entity.source_table, entity.source_key, 40)}
    columns = ["Email_Address", "Address_Line2"]
    alone = list(column_chunks(source, entity, columns, ranges))
    log: list = []
    spec = connection_spec(demo_plan.source)
    both = list(
        column_chunks(
            _Reads(source, "main", log),
            entity,
            columns,
            ranges,
            helper=lambda: _Reads(connect(*spec), "helper", log),
        )
    )
    assert len(ranges["accounts"]) == 8
    assert [{c: part[c].to_pylist() for c in columns} for part in both] == [
        {c: part[c].to_pylist() for c in columns} for part in alone
    ]
    main = [r for who, r in log if who == "main"]
    helper = [r for who, r in log if who == "helper"]
    assert main == ranges["accounts"][0::2]
    assert helper == [*ranges["accounts"][1::2], "closed"]
