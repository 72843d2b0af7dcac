"""Random sequences of runs against one real PostgreSQL target (issue 15): load, delta,
re-process, cancel, concurrent launch, rollback in and out of order — with an oracle of the
target's expected content after every step.

The oracle is the plan's intent: the engine's pure transform of the source rows as they are
at the step (text of the compared columns), upserted into the expected table; a rollback pops
the expected content saved before the run. Every action either keeps target = oracle with the
run's accounting balanced, or is refused with a message and changes nothing. At the end every
run is rolled back, newest first, and the target's checksum is the one before the first run.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from celery import current_app
from django.contrib.auth.models import User
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import Plan
from migration_planner.lib.errors import ConflictError
from runs.connections import connector_for, connectors_close
from runs.enums import RollbackStatus, RunStatus
from runs.models import FailedRecord, Run, TableLease
from runs.selectors import failed_record_filter
from runs.services import (
    RollbackOrderError,
    TableBusy,
    failed_record_correct,
    failed_record_reprocess,
    run_cancel,
    run_create,
    run_rollback_request,
)
from tests.runs.conftest import _pg_system
from tests.support import pg

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.postgres,
]
COLUMNS = ("account_number", "name", "email", "account_status")
SOURCE_ROWS = 100


def _target_rows(dbname: str) -> dict[str, tuple]:
    rows = pg.query(dbname, f"SELECT {', '.join(COLUMNS)} FROM accounts")  # noqa: S608
    return {r[0]: tuple(r[1:]) for r in rows}


def _intended(plan: Plan, source_db: str, where: str = "", params: tuple = ()) -> dict:
    """What a load of these source rows means to write (the engine's pure transform)."""
    from runs.engine.batch import source_columns

    entity = _snapshot(plan).entity("accounts")
    source = connector_for(plan.source)
    frame = source.extract("customers", source_columns(entity), entity.source_key, _all())
    if where:
        keys = {str(r[0]) for r in pg.query(source_db, where, params)}
        frame = frame[frame["Customer_ID"].astype(str).isin(keys)]
    return _intended_rows(plan, frame)


def _snapshot(plan: Plan):
    from runs.services.state import run_snapshot

    return run_snapshot(Run.objects.filter(plan=plan).order_by("-pk").first())


def _intended_rows(plan: Plan, frame: pd.DataFrame) -> dict:
    from runs.engine.transform import transform_frame

    snapshot = _snapshot(plan)
    entity = snapshot.entity("accounts")
    result = transform_frame(
        entity=entity, frame=frame, lookups=snapshot.lookups, namespace=snapshot.plan
    )
    good = result.rows
    invalid = set(target_validation_failures(plan, good))
    return {
        row["account_number"]: tuple(None if pd.isna(row[c]) else str(row[c]) for c in COLUMNS[1:])
        for idx, row in good.iterrows()
        if idx not in invalid
    }


def target_validation_failures(plan: Plan, rows) -> list:
    """Rows the target's column types would refuse (they become load-stage failures)."""
    return list(connector_for(plan.target).validate_rows("accounts", rows))


def _all():
    from runs.engine.connectors import KeyRange

    return KeyRange(None, None)


class ManyRuns(RuleBasedStateMachine):
    """One plan (accounts only), one source, one target; the machine's fields are the oracle."""

    plan: Plan
    source_db: str
    target_db: str
    operator: User

    def __init__(self) -> None:
        super().__init__()
        _reset(self.plan, self.source_db, self.target_db)
        self.pristine = connector_for(self.plan.target).table_checksum("accounts", ["id"])
        self.expected: dict[str, tuple] = {}
        self.stack: list[tuple[Run, dict, str | None]] = []  # run, expected before, watermark
        self.edits = 0

    # ------------------------------------------------------------------ actions
    @rule(n=st.integers(1, 5))
    def edit_source(self, n: int) -> None:
        """Someone changes customers in the source (name and Last_Modified move)."""
        self.edits += 1
        pg.query(
            self.source_db,
            'UPDATE customers SET "Cust_Name" = %s, "Last_Modified" = %s '
            'WHERE "Customer_ID" IN (SELECT "Customer_ID" FROM customers '
            'ORDER BY md5("Customer_ID"::text || %s) LIMIT %s)',
            (
                f"edited corp {self.edits}",
                dt.datetime(2030, 1, 1) + dt.timedelta(days=self.edits),
                str(self.edits),
                n,
            ),
        )

    @rule()
    def load(self) -> None:
        self._write_run("load")

    @precondition(lambda self: any(r.status == RunStatus.SUCCEEDED for r, *_ in self.stack))
    @rule()
    def delta(self) -> None:
        self._write_run("delta")

    def _write_run(self, mode: str) -> None:
        mark = self._watermark() if mode == "delta" else None
        before = dict(self.expected)
        run = run_create(plan=self.plan, user=self.operator, mode=mode, scope_entity="accounts")
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error
        where = 'SELECT "Customer_ID" FROM customers WHERE "Last_Modified" > %s' if mark else ""
        self.expected.update(_intended(self.plan, self.source_db, where, (mark,) if mark else ()))
        top = self._source_top()
        self.stack.append((run, before, top))

    def _watermark(self) -> str | None:
        """The high-water mark the newest succeeded (not rolled back) run recorded."""
        for run, _, top in reversed(self.stack):
            if run.status == RunStatus.SUCCEEDED:
                return top
        return None

    def _source_top(self) -> str:
        return str(pg.query(self.source_db, 'SELECT max("Last_Modified") FROM customers')[0][0])

    @rule()
    def concurrent_launch_then_cancel(self) -> None:
        """A load queued (no worker) holds the tables: a second writer is refused; cancel."""
        conf = current_app.conf
        conf.task_always_eager = False
        try:
            queued = run_create(plan=self.plan, user=self.operator, mode="load")
            with pytest.raises(TableBusy, match=f"run #{queued.pk} \\(load\\)"):
                run_create(plan=self.plan, user=self.operator, mode="delta")
        finally:
            conf.task_always_eager = True
        run_cancel(run=queued, user=self.operator)
        queued.refresh_from_db()
        assert queued.status == RunStatus.CANCELLED

    @precondition(lambda self: self.stack)
    @rule()
    def rollback_newest(self) -> None:
        run, before, _ = self.stack.pop()
        rollback = run_rollback_request(run=run, user=self.operator)
        rollback.refresh_from_db()
        run.refresh_from_db()
        assert rollback.status == RollbackStatus.VERIFIED, rollback.error
        assert set(run.failed_records.values_list("status", flat=True)) <= {
            "superseded",
            "ignored",
        }
        self.expected = before

    @precondition(lambda self: len(self.stack) >= 2)
    @rule()
    def rollback_out_of_order_is_refused(self) -> None:
        older = self.stack[0][0]
        with pytest.raises(RollbackOrderError, match=f"run #{self.stack[-1][0].pk} "):
            run_rollback_request(run=older, user=self.operator)

    @precondition(lambda self: self.stack)
    @rule(pick=st.integers(0, 10))
    def reprocess_newest(self, pick: int) -> None:
        """Correct one e-mail of the newest run's queue and re-process it."""
        run = self.stack[-1][0]
        records = [
            r
            for r in failed_record_filter(run=run, field="email", status="open")
            if len(r.errors) == 1
        ]
        if not records:
            return
        record = records[pick % len(records)]
        email = f"fixed{record.source_key}@example.com"
        # (a record carried by reference is corrected as its copy in the newest run)
        record = failed_record_correct(
            record=record, user=self.operator, values={"Email_Address": email}
        )
        result = failed_record_reprocess(
            records=FailedRecord.objects.filter(pk=record.pk), user=self.operator
        )
        assert result.fixed == 1
        # Intent: the record's own source row (as extracted then) with the correction.
        row = {**record.source_row, "Email_Address": email}
        self.expected.update(_intended_rows(self.plan, pd.DataFrame([row], dtype=object)))

    @precondition(lambda self: len(self.stack) >= 2)
    @rule()
    def reprocess_older_is_refused(self) -> None:
        older = self.stack[0][0]
        record = failed_record_filter(run=older, status="open").first()
        if record is not None:
            with pytest.raises(ConflictError, match="cannot be re-processed"):
                failed_record_reprocess(
                    records=FailedRecord.objects.filter(pk=record.pk), user=self.operator
                )

    # ------------------------------------------------------------------ invariants
    @invariant()
    def target_equals_oracle(self) -> None:
        actual = _target_rows(self.target_db)
        differ = {
            k: (actual.get(k), self.expected.get(k))
            for k in set(actual) | set(self.expected)
            if actual.get(k) != self.expected.get(k)
        }
        assert not differ, sorted(differ.items())[:5]

    @invariant()
    def accounting_balances_and_no_lease_is_left(self) -> None:
        for run in Run.objects.exclude(status=RunStatus.CANCELLED):
            assert run.loaded + run.failed + run.filtered + run.duplicates == run.extracted
        assert not TableLease.objects.exists()

    def teardown(self) -> None:
        while self.stack:
            run, _, _ = self.stack.pop()
            rollback = run_rollback_request(run=run, user=self.operator)
            rollback.refresh_from_db()
            assert rollback.status == RollbackStatus.VERIFIED, rollback.error
        target = connector_for(self.plan.target)
        assert target.table_checksum("accounts", ["id"]) == self.pristine


def _reset(plan: Plan, source_db: str, target_db: str) -> None:
    """A fresh source, an empty target without a ledger, no runs (each example starts over)."""
    Run.objects.all().delete()
    legacy_crm.build_source(pg.url_for(source_db), rows=SOURCE_ROWS, seed=7)
    pg.query(target_db, "DROP SCHEMA IF EXISTS mp_ledger CASCADE")
    pg.query(target_db, "TRUNCATE accounts, contacts, orders RESTART IDENTITY CASCADE")
    connectors_close()


@pytest.fixture
def many_runs_world(eager_celery, operator):
    with pg.throwaway_database("many_src") as src, pg.throwaway_database("many_tgt") as tgt:
        legacy_crm.build_source(pg.url_for(src), rows=SOURCE_ROWS, seed=7)
        legacy_crm.build_target(pg.url_for(tgt))
        plan, _ = demo_plan_install(
            source=_pg_system("Many source", src, "dev", "source"),
            target=_pg_system("Many target", tgt, "uat", "target"),
            owner=User.objects.create(username="many-owner"),
            us_states=legacy_crm.US_STATES,
            today=dt.date(2026, 1, 5),
        )
        plan.entities.exclude(name="accounts").delete()
        plan.failure_threshold_pct = 100
        plan.save()
        yield plan, src, tgt
        Run.objects.all().delete()
        connectors_close()


def test_random_sequences_of_runs_keep_the_target_equal_to_the_oracle(many_runs_world, operator):
    plan, src, tgt = many_runs_world
    ManyRuns.plan, ManyRuns.source_db, ManyRuns.target_db = plan, src, tgt
    ManyRuns.operator = operator
    bounded = settings(
        max_examples=6,  # ~1.5 min on the loaded 2-core machine
        stateful_step_count=8,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    run_state_machine_as_test(ManyRuns, settings=bounded)
