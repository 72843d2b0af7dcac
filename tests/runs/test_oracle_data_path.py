"""Oracle test of the whole data path (stateful, hypothesis), over the WHOLE rule registry.

Every example builds a plan with one field per registered rule type (params drawn by
hypothesis; the set of rule types comes from ``REGISTRY``, so a new rule without an oracle or a
strategy here fails ``test_every_registered_rule_has_an_oracle``), plus fields copying hostile
values into typed columns (char(n), varchar(n), numeric(p,s), timestamptz, boolean, uuid, json).
Random sources with hostile values (NULL, '', whitespace incl. tab/CR/LF/NEL/unicode spaces,
``\\N``, quotes, unicode, 5,000-character text, unicode digits, edge numbers, zoned timestamps)
go through the real services — ``run_create`` (load with upsert, delta),
``failed_record_correct`` + ``failed_record_reprocess`` — into a PostgreSQL or an SQLite
target. After every step the target is compared by key and cell with the independent oracle
(tests/runs/oracle_model.py: plain Python, never the engine's rules, validation or canonical
forms), the error queue key by key (failing fields, categories, whole source rows), and the
run report's verdict may be Pass only when target and oracle agree; a cell changed behind the
run's back must make the report (reconciled again) say Fail.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from datetime import date

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mappings.models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Plan,
    RuleStep,
    System,
)
from runs.engine.rules import REGISTRY, validate_params
from runs.enums import RunStatus
from runs.models import FailedRecord, Run
from runs.services import failed_record_correct, failed_record_reprocess, run_create
from tests.runs.oracle_model import ORACLE, Context, Fail, field_result, stored_canonical
from tests.runs.oracle_model import target_value as oracle_target
from tests.support import pg
from validation.models import RunReport
from validation.services import run_report_build

pytestmark = [pytest.mark.oracle, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

settings.register_profile(
    "oracle",
    # per target kind; each example is 2-4 real runs of ~30 fields (ORACLE_EXAMPLES=20 to hunt)
    max_examples=int(os.environ.get("ORACLE_EXAMPLES", "2")),
    stateful_step_count=3,
    deadline=None,
    derandomize=not os.environ.get("ORACLE_RANDOM"),  # ORACLE_RANDOM=1: new examples each time
    # no shrinking: each step is a real run; the failing example is printed as found
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)

LOOKUP = {"A": "alpha", "b": "beta", "": "blank", "\\N": "escaped", " c ": "padded"}
PARENTS = 4  # parent rows 1..4, loaded before the children that reference them
WS = " \t\n\r\x0b\x0c\x85\u00a0\u1680\u2003\u2028\u3000"
ALPHABET = "aAbz09 \t\n\r\\\"',|;N\x85\u00a0\u2003\u200büǅ✓日٣"
HOSTILE = [
    None,
    "",
    " ",
    "\\N",
    "\\",
    "\\\\N",
    "a\tb",
    "line\nbreak\r\n",
    "nel\x85next\x85",
    '"quoted"',
    "it's",
    "x,y;z|w",
    "ünïcödé ✓ 日本 ǅ",
    "  padded  inside ",
    "NULL",
    "\t",
    "\u3000wide\u3000space\u2028",
    "zero\u200bwidth",
    "A",
    "b",
    "x" * 5000,
    "ab\u00a0\u2003cd",
    "ACME LLC",
    "IBM consulting (usa)",
    "MCDONALD'S gmbh",
]
hostile = st.one_of(st.sampled_from(HOSTILE), st.text(alphabet=ALPHABET + WS, max_size=12))


def _pool(*values):
    return st.sampled_from(values)


# Values a failable field gets by default ("friendly": mostly passing, including nulls and
# blanks); one field of about half the rows gets a hostile value instead.
PHONES = _pool("2125550100", "(212) 555-0100", "1-212-555-0100", "+1 212 555 0100", " ", None, "")
EMAILS = _pool("a@b.co", " A.B@Example.COM ", "ü@bücher.de", "x+y@a-b.example.org", None, "  ")
DATES = st.builds(
    lambda d, h, m, fmt, pad: (
        pad + d.strftime(fmt).replace("HH", f"{h:02d}").replace("MM", f"{m:02d}") + pad
    ),
    st.dates(min_value=date(1950, 1, 1), max_value=date(2090, 12, 31)),
    st.integers(0, 23),
    st.integers(0, 59),
    _pool("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y HH:MM"),
    _pool("", " ", "\t"),
)
NUMBERS = _pool(
    "12", "+7", "-0", "007", "1,234", "1.0", " 42 ", "0.125", "-2.5", ".5", "19.995", None, ""
)
BOOLS = _pool("yes", "No", "T", "0", " y ", "TRUE", "f", None, "")
REFS = _pool("1", "2", " 3 ", "4", "", None)
MAPPED = _pool("A", "b", "", "\\N", " c ", "a ", None)
MATCHING = _pool("abc", "Hello World", "12345", "x", None, "")
STAMPS = _pool(
    "2024-02-29T10:11:12+02:00",
    "2024-03-01 00:00:00Z",
    "2023-12-31T23:59:59.999999-05:30",
    "1999-01-01T00:00:00+00:00",
    None,
)
JSONS = _pool(
    '{"a": 1}', "[1, 2]", '"s"', "1", "null", '{"b":1,"a":[true, null]}', '{"x":"ü\\n"}', None
)
UUIDS = _pool(
    "6F9619FF-8B86-D011-B42D-00C04FC964FF",
    "{0f8fad5b-d9cb-469f-a165-70867728950e}",
    "0f8fad5bd9cb469fa16570867728950e",
    "00000000-0000-0000-0000-000000000000",
    None,
)
NUMERIC_EDGES = _pool(
    "999999.99", "-999999.99", "1.5", "1.50", "1.2300", "0", "-0.00", "1e3", "NaN", None, "١٢"
)
CHARS = _pool("USD", "EU", "abc", "ab ", "ü✓日", None, "")
BAD = {  # hostile values that should fail each typed copy field (mixed with the generic ones)
    "timestamptz": _pool("2024-02-30T00:00:00Z", "yesterday", "", "2024-01-01 25:00:00+00"),
    "json": _pool("{a:1}", "", "[1,", "nul"),
    "uuid": _pool(
        "not-a-uuid",
        "6F9619FF-8B86-D011-B42D-00C04FC964F",
        "",
        " 6f9619ff-8b86-d011-b42d-00c04fc964ff",
    ),
    "boolean": _pool("maybe", "", "2", "yess"),
    "numeric(8,2)": _pool("1000000", "1.235", "١٢", "abc", "", "1e9", "Infinity"),
    "char(3)": _pool("EURO", "abcd", "日本語x"),
    "varchar(5)": _pool("abcdef", "ü" * 6),
}


def _p(name: str, **params) -> tuple[str, dict]:
    return (name, validate_params(name, params))


def _rule_field(name, params, *, sources=1, col="text", values="hostile", failable=False):
    """One field: its steps, source count, target column type, value pool (a name in
    VALUES, so that a failing example prints short) and whether it may fail rows."""
    return {
        "steps": [_p(name, **params)],
        "sources": sources,
        "col": col,
        "values": values,
        "failable": failable,
    }


b = st.booleans()
# rule type -> strategy of one field exercising it (params, target column type, values)
FIELDS = {
    # the target's trigger rewrites this field's 'NULL' (coerced_by_target, see _coercing)
    "copy": st.just(_rule_field("copy", {}, values="COPY")),
    "trim": st.builds(
        lambda e, c: _rule_field("trim", {"empty_to_null": e, "collapse_inner": c}), b, b
    ),
    "upper": st.just(_rule_field("upper", {})),
    "lower": st.just(_rule_field("lower", {})),
    "title": st.just(_rule_field("title", {})),
    "concat": st.builds(
        lambda sep, s: _rule_field("concat", {"separator": sep, "strip": s}, sources=2),
        _pool(" ", "-", "", "\t"),
        b,
    ),
    "coalesce": st.just(_rule_field("coalesce", {}, sources=2)),
    "split": st.builds(
        lambda sep, i, s: _rule_field("split", {"separator": sep, "index": i, "strip": s}),
        _pool(",", " ", "ab", "\\N"),
        st.integers(-2, 2),
        b,
    ),
    "value_map": st.builds(
        lambda m, n, i: _rule_field(
            "value_map",
            {"lookup": "codes", "on_missing": m, "on_null": n, "ignore_case": i},
            values="MAPPED",
            failable=True,
        ),
        _pool("default", "keep", "fail"),
        _pool("default", "null", "fail"),
        b,
    ),
    "regex_replace": st.builds(
        lambda pr: _rule_field("regex_replace", {"pattern": pr[0], "replacement": pr[1]}),
        _pool(("[0-9]+", "#"), (" +", ""), ("a|b", "\\\\"), ("(x)(y)?", "<\\1\\2>")),
    ),
    "regex_validate": st.builds(
        lambda pat, f: _rule_field(
            "regex_validate", {"pattern": pat, "full_match": f}, values="MATCHING", failable=True
        ),
        _pool("[a-zA-Z ]+", "[0-9a-z]+", "x|abc|[0-9]{5}"),
        b,
    ),
    "phone_format": st.just(_rule_field("phone_format", {}, values="PHONES", failable=True)),
    "email": st.just(_rule_field("email", {}, values="EMAILS", failable=True)),
    "parse_date": st.builds(
        lambda out: _rule_field(
            "parse_date",
            {"formats": ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y %H:%M"], "output": out},
            col="date" if out == "date" else "timestamp",
            values="DATES",
            failable=True,
        ),
        _pool("date", "datetime"),
    ),
    "cast": st.one_of(
        st.builds(
            lambda col, sep: _rule_field(
                "cast",
                {"to": "int", "thousands_separator": sep},
                col=col,
                values="NUMBERS",
                failable=True,
            ),
            _pool("integer", "bigint", "numeric(12,2)", "text"),
            _pool("", ","),
        ),
        st.builds(
            lambda scale, col: _rule_field(
                "cast",
                {"to": "decimal", "scale": scale, "thousands_separator": ","},
                col=col.format(s=scale, s1=max(scale - 1, 0), p=scale + 2),
                values="NUMBERS",
                failable=True,
            ),
            st.integers(0, 10),
            _pool("numeric(20,{s})", "numeric(20,{s1})", "numeric({p},{s})"),
        ),
        st.just(_rule_field("cast", {"to": "bool"}, col="boolean", values="BOOLS", failable=True)),
        st.just(_rule_field("cast", {"to": "text"})),
    ),
    "truncate": st.builds(
        lambda n, o, col: _rule_field(
            "truncate",
            {"length": n, "on_overflow": o},
            col=col.format(n=n),
            failable=o == "fail",
        ),
        st.integers(1, 6),
        _pool("truncate", "truncate", "fail"),
        _pool("text", "varchar({n})", "char({n})"),
    ),
    "default_if_null": st.builds(
        lambda bl: _rule_field("default_if_null", {"value": "D\\N", "blank_is_null": bl}), b
    ),
    "constant": st.builds(
        lambda v: _rule_field("constant", {"value": v}), _pool("const\t'\"\\N", "ü ", "0")
    ),
    "uuid_from_key": st.builds(
        lambda scope, frm, col: _rule_field(
            "uuid_from_key", {"scope": scope, "from": frm}, col=col
        ),
        _pool("", "things"),
        _pool("source_key", "value"),
        _pool("uuid", "text"),
    ),
    "hash": st.builds(
        lambda salt, col: _rule_field("hash", {"salt": salt}, col=col),
        _pool("", "pepper\t"),
        _pool("text", "char(64)"),
    ),
    "mask": st.builds(
        lambda k, c: _rule_field("mask", {"keep_last": k, "mask_char": c}),
        st.integers(0, 4),
        _pool("*", "#", ""),
    ),
    "reference_lookup": st.builds(
        lambda col: _rule_field(
            "reference_lookup", {"entity": "parents"}, col=col, values="REFS", failable=True
        ),
        _pool("integer", "text"),
    ),
}
TYPED = {  # typed copy fields: column type -> friendly values
    "timestamptz": STAMPS,
    "json": JSONS,
    "uuid": UUIDS,
    "boolean": BOOLS,
    "numeric(8,2)": NUMERIC_EDGES,
    "char(3)": CHARS,
    "varchar(5)": CHARS,
}
VALUES = {
    "hostile": hostile,
    "COPY": st.one_of(hostile, hostile, st.just("NULL")),
    "MAPPED": MAPPED,
    "MATCHING": MATCHING,
    "PHONES": PHONES,
    "EMAILS": EMAILS,
    "NUMBERS": NUMBERS,
    "BOOLS": BOOLS,
    "REFS": REFS,
    "DATES": st.one_of(DATES, _pool(None, "")),
    **TYPED,
}
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


def test_every_registered_rule_has_an_oracle_and_a_strategy():
    """A rule added to the registry without an oracle and a strategy here fails this test."""
    assert set(ORACLE) == set(REGISTRY)
    assert set(FIELDS) == set(REGISTRY)


def _plan_strategy():
    """Every rule type once (order drawn), then the typed copy fields."""
    rules = st.permutations(sorted(FIELDS)).flatmap(
        lambda names: st.tuples(*[FIELDS[n] for n in names])
    )
    typed = [st.just(_rule_field("copy", {}, col=t, values=t, failable=True)) for t in TYPED]
    return st.builds(
        lambda fields, extra, default: {"fields": [*fields, *extra], "lookup_default": default},
        rules,
        st.tuples(*typed),
        _pool(None, "dflt", ""),
    )


# ----------------------------------------------------------------------- the real system

_serial = itertools.count(1)


class DataPath(RuleBasedStateMachine):
    """One plan on one target; the oracle keeps the target and the open failures it expects."""

    kind = "sqlite"
    pg_db = ""
    tmp = None

    @initialize(data=st.data(), plan=_plan_strategy())
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
        records = FailedRecord.objects.filter(run=run, entity="things", status="open")
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
        return FailedRecord.objects.filter(run=self.last_run, entity="things", status="open")

    @precondition(lambda self: self._open_records().exists())
    @rule(data=st.data())
    def reprocess(self, data):
        """Correct the open records of the last run in the queue and re-process them."""
        records = list(self._open_records())
        corrected = {}
        for record in records:
            fix = {c: v for c, v in data.draw(self._row()).items() if c in self.columns}
            failed_record_correct(record=record, user=None, values=fix)
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


@pytest.fixture
def oracle_pg_db():
    with pg.throwaway_database("oracle_tgt") as name:
        yield name


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_oracle_data_path(kind, eager_celery, tmp_path, request):
    DataPath.kind, DataPath.tmp = kind, tmp_path
    DataPath.pg_db = request.getfixturevalue("oracle_pg_db") if kind == "postgresql" else ""
    before = dict(STATS)
    run_state_machine_as_test(DataPath, settings=settings.get_profile("oracle"))
    figures = {k: v - before[k] for k, v in STATS.items()}
    print(f"oracle {kind}: {figures}")  # shown with -s; the figures go in the report
    examples = settings.get_profile("oracle").max_examples
    assert STATS["examples"] - before["examples"] >= examples
    assert figures["runs"] > examples
    assert figures["coerced"] and figures["tampered"] and figures["reprocessed"]
