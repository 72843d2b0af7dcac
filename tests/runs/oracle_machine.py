"""The real system driven by the oracle data-path test (test_oracle_data_path.py): a
hypothesis state machine that builds a plan, runs it through the services into a PostgreSQL
or SQLite target and checks target, error queue and report against tests/runs/oracle_model.py
after every step. ``STATS`` counts what it checked."""

from __future__ import annotations

import itertools
import sqlite3

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from mappings.models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Plan,
    RuleStep,
    System,
)
from runs.enums import RunStatus
from runs.models import FailedRecord, Run
from runs.selectors import failed_record_filter
from runs.services import failed_record_correct, failed_record_reprocess, run_create
from tests.runs.oracle_model import Context, Fail, field_result
from tests.runs.oracle_strategies import BAD, LOOKUP, PARENTS, VALUES, hostile, plan_strategy
from tests.runs.oracle_target import stored_canonical
from tests.runs.oracle_target import target_value as oracle_target
from tests.support import pg
from validation.models import RunReport
from validation.services import run_report_build

STATS = {
    "examples": 0,
    "runs": 0,
    "reprocessed": 0,
    "rows_checked": 0,
    "cells_checked": 0,
    "records_checked": 0,
    "tampered": 0,
    "coerced": 0,
}


# ----------------------------------------------------------------------- the real system

_serial = itertools.count(1)


class DataPath(RuleBasedStateMachine):
    """One plan on one target; the oracle keeps the target and the open failures it expects."""

    kind = "sqlite"
    pg_db = ""
    tmp = None

    @initialize(data=st.data(), plan=plan_strategy())
    def build(self, data, plan):
        n = next(_serial)
        STATS["examples"] += 1
        self.spec, self.n = plan, n
        self.table, self.ptable = f"dst_{n}", f"par_{n}"
        self.fields = plan["fields"]
        self.columns = []  # source columns of the child table, field by field
        for i, f in enumerate(self.fields):
            f["target"] = f"f{i}"
            f["srcs"] = [f"s{i}"] + ([f"s{i}b"] if f["sources"] == 2 else [])
            self.columns += f["srcs"]
        self.all_columns = ["id", *self.columns, "extra", "modified"]
        self.source_path = self.tmp / f"src_{n}.sqlite3"
        self.clock = itertools.count(1)
        self.source: dict[int, dict] = {}
        self.target: dict[str, dict] = {}  # ext -> {target column: oracle canonical}
        conn = sqlite3.connect(self.source_path)
        conn.execute(
            "CREATE TABLE src (id INTEGER PRIMARY KEY, "
            + ", ".join(f"{c} TEXT" for c in self.columns)
            + ", extra TEXT, modified TEXT NOT NULL)"
        )
        conn.execute("CREATE TABLE par (id INTEGER PRIMARY KEY, name TEXT, modified TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO par VALUES (?, ?, '2000-01-01')",
            [(i, f"parent {i}") for i in range(1, PARENTS + 1)],
        )
        conn.commit()
        conn.close()
        rows = data.draw(st.lists(self._row(), min_size=8, max_size=16))
        self._write_source({i + 1: r for i, r in enumerate(rows)})
        self.plan = self._plan(n)
        self._run("load", set(self.source))
        self.tamper(data)  # every example: the report must see a cell changed behind its back
        if self._open_records().exists():  # and every example works the queue once
            self.reprocess(data)
        loaded = sorted(int(k) for k in self.target)
        if loaded:  # and sees the target's trigger rewrite an update: coerced_by_target, undone
            row = {**self.source[loaded[0]], self._coercing["srcs"][0]: "NULL"}
            self._write_source({loaded[0]: row})
            self._run("delta", {loaded[0]})

    # -- values
    def _row(self):
        """A source row: friendly values for failable fields, hostile ones elsewhere, and in
        about half the rows one or two failable fields hostile (generic hostile text, or a
        value the field's column type should refuse) — so that most rows reach the target."""
        failable = [f for f in self.fields if f["failable"]]

        def build(values, hostile_at, bad):
            row = dict(values)
            for i in hostile_at:
                f = failable[i % len(failable)]
                row[f["srcs"][0]] = bad[f["srcs"][0]]
            return row

        cols = {c: VALUES[f["values"]] for f in self.fields for c in f["srcs"]}
        cols["extra"] = hostile
        bad = {f["srcs"][0]: st.one_of(hostile, BAD.get(f["col"], hostile)) for f in failable}
        return st.builds(
            build,
            st.fixed_dictionaries(cols),
            st.one_of(st.just(()), st.lists(st.integers(0, 1000), min_size=1, max_size=2)),
            st.fixed_dictionaries(bad),
        )

    @property
    def _coercing(self) -> dict:
        """The field a target trigger rewrites ('NULL' -> 'null!'): the rule 'copy' into text."""
        return next(f for f in self.fields if f["steps"][0][0] == "copy" and f["col"] == "text")

    # -- source, plan
    def _write_source(self, changes: dict[int, dict]) -> None:
        conn = sqlite3.connect(self.source_path)
        stamp = f"2026-01-01 00:{next(self.clock):05d}"
        cols = [*self.columns, "extra"]
        for key, row in changes.items():
            conn.execute(
                f"INSERT OR REPLACE INTO src (id, {', '.join(cols)}, modified) VALUES "
                f"({', '.join('?' * (len(cols) + 2))})",
                (key, *[row[c] for c in cols], stamp),
            )
            self.source[key] = dict(row)
        conn.commit()
        conn.close()

    def _target_system(self, n: int) -> System:
        child = (
            f"CREATE TABLE {self.table} (id {{pk}}, ext text NOT NULL UNIQUE, "
            + ", ".join(f"{f['target']} {f['col']}" for f in self.fields)
            + ")"
        )
        parent = f"CREATE TABLE {self.ptable} (id {{pk}}, ext text NOT NULL UNIQUE, name text)"
        col = self._coercing["target"]
        if self.kind == "postgresql":
            pg.query(self.pg_db, child.format(pk="serial PRIMARY KEY"))
            pg.query(self.pg_db, parent.format(pk="serial PRIMARY KEY"))
            pg.query(
                self.pg_db,
                f"CREATE FUNCTION coerce_{n}() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
                f"IF NEW.{col} = 'NULL' THEN NEW.{col} := 'null!'; END IF; RETURN NEW; END$$",
            )
            pg.query(
                self.pg_db,
                f"CREATE TRIGGER coerce BEFORE INSERT OR UPDATE ON {self.table} "
                f"FOR EACH ROW EXECUTE FUNCTION coerce_{n}()",
            )
            p = pg.admin_params()
            system = System(
                name=f"oracle-target-{n}",
                kind="postgresql",
                host=p.get("host", "127.0.0.1"),
                port=int(p.get("port", 5432)),
                database=self.pg_db,
                username=p.get("user", "postgres"),
                role="target",
                environment="uat",
            )
            system.set_secret(p.get("password", ""))
            system.save()
            return system
        path = self.tmp / f"dst_{n}.sqlite3"
        conn = sqlite3.connect(path)
        conn.execute(child.format(pk="INTEGER PRIMARY KEY"))
        conn.execute(parent.format(pk="INTEGER PRIMARY KEY"))
        for event in ("INSERT", f"UPDATE OF {col}"):
            conn.execute(
                f"CREATE TRIGGER coerce_{event[:6]} AFTER {event} ON {self.table} "
                f"WHEN NEW.{col} = 'NULL' BEGIN "
                f"UPDATE {self.table} SET {col} = 'null!' WHERE id = NEW.id; END"
            )
        conn.commit()
        conn.close()
        return System.objects.create(
            name=f"oracle-target-{n}",
            kind="sqlite",
            path=str(path),
            role="target",
            environment="uat",
        )

    def _plan(self, n: int) -> Plan:
        source = System.objects.create(
            name=f"oracle-source-{n}", kind="sqlite", path=str(self.source_path), role="source"
        )
        plan = Plan.objects.create(
            name=f"Oracle {n}",
            slug=f"oracle-{n}",
            source=source,
            target=self._target_system(n),
            failure_threshold_pct=100,
        )
        lookup = LookupTable.objects.create(
            plan=plan, name="codes", default_value=self.spec["lookup_default"]
        )
        LookupEntry.objects.bulk_create(
            LookupEntry(table=lookup, key=k, value=v) for k, v in LOOKUP.items()
        )
        parents = EntityMapping.objects.create(
            plan=plan,
            name="parents",
            source_table="par",
            target_table=self.ptable,
            source_key=["id"],
            target_key="id",
            external_id="ext",
            load_mode="upsert",
            watermark_column="modified",
            load_order=0,
        )
        FieldMapping.objects.create(entity=parents, target_column="ext", source_columns=["id"])
        FieldMapping.objects.create(
            entity=parents, target_column="name", source_columns=["name"], position=1
        )
        entity = EntityMapping.objects.create(
            plan=plan,
            name="things",
            source_table="src",
            target_table=self.table,
            source_key=["id"],
            target_key="id",
            external_id="ext",
            load_mode="upsert",
            watermark_column="modified",
            load_order=1,
        )
        FieldMapping.objects.create(entity=entity, target_column="ext", source_columns=["id"])
        for position, f in enumerate(self.fields, start=1):
            field = FieldMapping.objects.create(
                entity=entity,
                target_column=f["target"],
                source_columns=f["srcs"],
                position=position,
            )
            RuleStep.objects.bulk_create(
                RuleStep(field=field, position=i, rule=name, params=params)
                for i, (name, params) in enumerate(f["steps"])
            )
        return plan

    # -- the oracle
    def _parents(self) -> dict[str, str]:
        return {ext: str(i) for ext, i in self._query(f"SELECT ext, id FROM {self.ptable}")}

    def _expect(self, key: int, row: dict) -> tuple[dict | None, dict[str, str]]:
        """(target cells, {}) when the row loads, else (None, {field: category}) — transform
        failures first (the target is not asked then), then the target-type refusals."""
        ctx = Context(LOOKUP, self.spec["lookup_default"], self.parents, str(key), self.plan.slug)
        values, failing = {}, {}
        for f in self.fields:
            got = field_result(f["steps"], [row[c] for c in f["srcs"]], ctx)
            if isinstance(got, Fail):
                failing[f["target"]] = got.category
            values[f["target"]] = got
        if failing:
            return None, failing
        cells = {}
        for f in self.fields:
            got = oracle_target(f["col"], values[f["target"]])
            if isinstance(got, Fail):
                failing[f["target"]] = got.category
            cells[f["target"]] = got
        if not failing and cells[self._coercing["target"]] == "NULL":  # the trigger's rewrite
            failing[self._coercing["target"]] = "coerced_by_target"
        return (None, failing) if failing else (cells, {})

    def _query(self, sql: str) -> list[tuple]:
        if self.kind == "postgresql":
            return pg.query(self.pg_db, sql)
        conn = sqlite3.connect(self.plan.target.path)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def _target_rows(self) -> dict[str, dict]:
        cast = "::text" if self.kind == "postgresql" else ""
        cols = ", ".join(f"{f['target']}{cast}" for f in self.fields)
        out = {}
        for r in self._query(f"SELECT ext, {cols} FROM {self.table}"):
            out[r[0]] = {
                f["target"]: stored_canonical(f["col"], v)
                for f, v in zip(self.fields, r[1:], strict=True)
            }
        return out

    # -- checks
    def _run(self, mode: str, processed: set[int]) -> None:
        run = run_create(plan=self.plan, user=None, mode=mode)
        run.refresh_from_db()
        STATS["runs"] += 1
        assert run.status == RunStatus.SUCCEEDED, run.error
        failing = self._apply({k: self.source[k] for k in processed})
        parents = PARENTS if mode == "load" else 0
        self.last_run = run
        self.last_loaded = {str(k) for k in processed} - set(failing)
        self._check_records(run, failing)
        assert (run.extracted, run.failed) == (len(processed) + parents, len(failing))
        self._check_target_and_report(run)

    def _apply(self, rows: dict[int, dict]) -> dict[str, dict[str, str]]:
        """Apply the oracle to rows written in this step: {key: {field: category}} failing."""
        failing = {}
        self.parents = self._parents()
        for key, row in rows.items():
            cells, fails = self._expect(key, row)
            if cells is None:
                failing[str(key)] = fails
            else:
                self.target[str(key)] = cells
        return failing

    def _check_records(self, run: Run, failing: dict[str, dict[str, str]]) -> None:
        records = failed_record_filter(run=run, entity="things", status="open")
        got = {r.source_key: r for r in records}
        assert set(got) == set(failing), (
            {k: r.errors for k, r in got.items() if k not in failing},
            {k: (v, self.source[int(k)]) for k, v in failing.items() if k not in got},
        )
        for key, record in got.items():
            first = {}
            for e in record.errors:
                first.setdefault(e["field"], e["category"])
            assert first == failing[key], (key, record.errors, failing[key])
            # the whole source row: every column of the source table, mapped or not
            assert sorted(record.source_row) == sorted(self.all_columns), key
            STATS["records_checked"] += 1
            STATS["coerced"] += "coerced_by_target" in first.values()

    def _check_target_and_report(self, run: Run) -> None:
        actual = self._target_rows()
        STATS["rows_checked"] += len(actual)
        STATS["cells_checked"] += len(self.fields) * len(actual)
        agree = actual == self.target
        diff = {
            (k, c): (a, self.target.get(k, {}).get(c))
            for k in actual.keys() | self.target.keys()
            for c, a in (actual.get(k) or {f["target"]: "<missing>" for f in self.fields}).items()
            if a != (self.target.get(k) or {}).get(c, "<missing>")
        }
        report = RunReport.objects.filter(run=run).first()
        if report is None:  # a run that wrote nothing is not reconciled
            assert run.loaded == 0, run
        elif report.verdict == "pass":
            assert agree, f"the report says Pass over a target that differs: {diff}"
        if agree and report is not None:
            assert report.data["key_diffs"]["things"]["clean"], report.data["key_diffs"]
        assert agree, diff

    # -- steps
    @rule(data=st.data())
    def upsert_all(self, data):
        """Change some rows at the source and load everything again (upsert)."""
        keys = data.draw(st.lists(st.sampled_from(sorted(self.source)), max_size=3, unique=True))
        self._write_source({k: data.draw(self._row()) for k in keys})
        self._run("load", set(self.source))

    @rule(data=st.data())
    def delta(self, data):
        """Change some rows and add new ones; a delta run moves only those."""
        keys = data.draw(st.lists(st.sampled_from(sorted(self.source)), max_size=2, unique=True))
        new = max(self.source) + 1
        keys += list(range(new, new + data.draw(st.integers(0, 2))))
        changes = {k: data.draw(self._row()) for k in keys}
        self._write_source(changes)
        self._run("delta", set(changes))

    def _open_records(self):
        return failed_record_filter(run=self.last_run, entity="things", status="open")

    @precondition(lambda self: self._open_records().exists())
    @rule(data=st.data())
    def reprocess(self, data):
        """Correct the open records of the last run in the queue and re-process them."""
        records = []
        corrected = {}
        for record in list(self._open_records()):
            fix = {c: v for c, v in data.draw(self._row()).items() if c in self.columns}
            # a record carried by reference is corrected as its copy in the last run
            records.append(failed_record_correct(record=record, user=None, values=fix))
            corrected[int(record.source_key)] = {**self.source[int(record.source_key)], **fix}
        failed_record_reprocess(
            records=FailedRecord.objects.filter(pk__in=[r.pk for r in records]), user=None
        )
        still = self._apply(corrected)
        reprocessed = FailedRecord.objects.filter(
            pk__in=[r.pk for r in records], status="reprocessed"
        )
        assert {r.source_key for r in reprocessed} == {str(k) for k in corrected} - set(still)
        STATS["reprocessed"] += len(records)
        self.last_loaded |= {str(k) for k in corrected} - set(still)
        actual = self._target_rows()
        assert actual == self.target

    @rule(data=st.data())
    def tamper(self, data):
        """Change one cell the last run wrote behind its back: reconciled again, the report
        must not say Pass; then put the cell back."""
        keys = sorted(k for k in self.last_loaded if k in self.target)
        if not keys:
            return
        key = data.draw(st.sampled_from(keys))
        texts = [f for f in self.fields if f["col"] == "text"]
        field = data.draw(st.sampled_from(texts))["target"]
        before = self._query(f"SELECT {field} FROM {self.table} WHERE ext = '{key}'")[0][0]
        ph = "%s" if self.kind == "postgresql" else "?"
        sql = f"UPDATE {self.table} SET {field} = {ph} WHERE ext = {ph}"
        self._execute(sql, ("tampered" if before != "tampered" else "tampered!", key))
        report = run_report_build(run=self.last_run, reason="oracle: tampered")
        assert report.verdict != "pass" and not report.data["key_diffs"]["things"]["clean"]
        self._execute(sql, (before, key))
        STATS["tampered"] += 1

    def _execute(self, sql: str, params: tuple) -> None:
        if self.kind == "postgresql":
            pg.query(self.pg_db, sql, params)
            return
        conn = sqlite3.connect(self.plan.target.path)
        conn.execute(sql, params)
        conn.commit()
        conn.close()
