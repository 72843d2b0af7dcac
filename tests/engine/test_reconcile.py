"""Range-then-narrow reconciliation (no Django): in memory, and in SQL on PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import psycopg2
from psycopg2 import sql

from runs.engine.canonical import canonical_row, pg_canonical_sql
from runs.engine.connectors import connect
from runs.engine.connectors.base import ColumnInfo
from runs.engine.hashing import row_hash
from runs.engine.reconcile import (
    MemorySide,
    PgSide,
    diff_sides,
    pg_row_hash_sql,
    pg_run_aggregate,
    pg_run_aggregates,
    reconcile_pg,
    split,
    table_source,
    values_equal,
)
from tests.support.statements import Recorder


def _rows(n: int) -> dict[str, str]:
    return {str(i): row_hash([str(i), f"name {i}"]) for i in range(1, n + 1)}


def test_split_covers_range_without_gaps():
    parts = split(10, 1000, 32)
    assert parts[0][0] == 10 and parts[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))


def test_diff_sides_identical_needs_one_level_and_no_rows():
    rows = _rows(50_000)
    diff = diff_sides(MemorySide(rows), MemorySide(dict(rows)), leaf_rows=100)
    assert (diff.clean, diff.levels, diff.rows_fetched) == (True, 1, 0)
    assert diff.expected_rows == diff.actual_rows == 50_000


def test_diff_sides_finds_missing_extra_changed_and_narrows():
    want = _rows(50_000)
    have = dict(want)
    del have["17"]
    have["25000"] = row_hash(["25000", "edited"])
    have["50001"] = row_hash(["50001", "new"])
    diff = diff_sides(MemorySide(want), MemorySide(have), factor=16, leaf_rows=100)
    assert (diff.missing, diff.extra, diff.changed) == (["17"], ["50001"], ["25000"])
    assert diff.rows_fetched < 1_000  # only the few narrowed ranges were fetched
    assert diff.levels >= 3


def test_diff_sides_with_text_keys_uses_hashed_positions():
    want = {f"k-{i}": row_hash([f"v{i}"]) for i in range(2_000)}
    have = {k: v for k, v in want.items() if k != "k-5"}
    diff = diff_sides(
        MemorySide(want, integer_keys=False), MemorySide(have, integer_keys=False), leaf_rows=50
    )
    assert diff.missing == ["k-5"] and not diff.extra and not diff.changed


def test_values_equal_compares_numbers_and_datetimes():
    assert values_equal("1234.5", "1234.50")
    assert values_equal("2018-01-15T10:30:00", "2018-01-15 10:30:00")
    assert not values_equal("Active", "Inactive")
    assert not values_equal(None, "x")


def _cursor_factory(params, wrap=lambda cur: cur):
    conn = psycopg2.connect(**params)

    class _Ctx:
        def __enter__(self):
            self.cur = conn.cursor()
            return wrap(self.cur)

        def __exit__(self, *exc):
            self.cur.close()
            conn.commit()

    return conn, _Ctx


def test_pg_row_hash_sql_equals_python_row_hash_of_the_canonical_text(pg_params):
    """The SQL canonical text (PostgreSQL targets) and the Python one (SQLite targets) agree."""
    conn, ctx = _cursor_factory(pg_params)
    with ctx() as cur:
        cur.execute("SET TimeZone = 'Europe/Berlin'; SET DateStyle = 'SQL, DMY'")
        cur.execute(
            "CREATE TABLE t (id int PRIMARY KEY, a text, b numeric(8,2), c timestamp, "
            "d timestamptz, e boolean, f uuid, g jsonb, h char(4), i date)"
        )
        cur.execute(
            "INSERT INTO t VALUES (1, 'x', 3.5, '2020-01-02 03:04:05', "
            "'2020-01-02 03:04:05.25+05', 'yes', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', "
            '\'{"bb": 1, "a": "é", "c": [{"zz": 2, "y": 3}]}\', '
            "'ab', '2024-02-29'), "
            "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
            "(3, '', -0.10, '2020-01-02 03:04:05.5', '2020-07-01 00:00:00Z', 'f', "
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '[1, 2]', '', '0099-01-01')"
        )
    info = connect("postgresql", pg_params).introspect().table("t")
    cols = list(info.columns)
    with ctx() as cur:
        cur.execute("SET TimeZone = 'Europe/Berlin'")
        # the Python side reads ISO text (as SQLite would hold it)
        cur.execute("SET DateStyle = 'ISO'")
        cur.execute(
            sql.SQL("SELECT {}, {}, {} FROM t AS t ORDER BY id").format(
                sql.SQL(", ").join(
                    sql.SQL("t.{}::text").format(sql.Identifier(c.name)) for c in cols
                ),
                sql.SQL(", ").join(pg_canonical_sql(sql.Identifier("t", c.name), c) for c in cols),
                pg_row_hash_sql(cols),
            )
        )
        rows = cur.fetchall()
    conn.close()
    n = len(cols)
    assert [list(r[n:-1]) for r in rows] == [canonical_row(cols, r[:n]) for r in rows]
    assert [r[-1] for r in rows] == [row_hash(canonical_row(cols, r[:n])) for r in rows]


def test_pg_sides_find_changes_in_100k_rows(pg_params):
    conn, ctx = _cursor_factory(pg_params)
    with ctx() as cur:
        cur.execute("CREATE TABLE t (id bigint PRIMARY KEY, name text, amount numeric(12,2))")
        cur.execute(
            "INSERT INTO t SELECT g, 'name ' || g, g * 1.5 FROM generate_series(1, 100000) g"
        )
        cur.execute(
            "CREATE TABLE ledger AS SELECT id::text AS k, "
            "substr(encode(sha256(convert_to(id::text, 'UTF8') || decode('1f', 'hex') || "
            "convert_to(name, 'UTF8') || decode('1f', 'hex') || "
            "convert_to(trim_scale(amount)::text, 'UTF8')), 'hex'), 1, 32) AS h FROM t"
        )
        cur.execute("UPDATE t SET name = 'changed' WHERE id = 4242")
        cur.execute("DELETE FROM t WHERE id = 77777")
        cur.execute("INSERT INTO t VALUES (100001, 'extra', 1)")
    key = ColumnInfo(name="id", data_type="bigint", cast_type="bigint")
    cols = [
        key,
        ColumnInfo(name="name", data_type="text"),
        ColumnInfo(
            name="amount", data_type="numeric(12,2)", cast_type="numeric(12,2)", base_type="numeric"
        ),
    ]
    ledger = PgSide(ctx, sql.SQL("ledger"))
    target = PgSide(ctx, table_source(sql.Identifier("t"), key, cols))
    diff = diff_sides(ledger, target)
    conn.close()
    assert (diff.missing, diff.extra, diff.changed) == (["77777"], ["100001"], ["4242"])
    assert diff.rows_fetched < 10_000


class _PlanRecorder:
    """A cursor that EXPLAINs (ANALYZE, JSON) each SELECT in its own transaction, settings in
    effect, before running it; the plans in ``plans``."""

    def __init__(self, cur, plans: list) -> None:
        self.cur, self.plans = cur, plans

    def execute(self, query, params=None):
        if not (isinstance(query, str) and query.startswith("SET")):
            text = sql.SQL(query) if isinstance(query, str) else query
            self.cur.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + text, params)
            self.plans.append(self.cur.fetchone()[0][0])
        return self.cur.execute(query, params)

    def __getattr__(self, name):
        return getattr(self.cur, name)


def _run_answers_for_rows_1_to_400(cur) -> None:
    """Run r1's batch b1 of entity e wrote (as its row state) the keys 1..400 of table t."""
    cur.execute(
        "INSERT INTO mp_ledger.batch (run_id, batch_id, entity, target_table, "
        "target_key_column, state_keys, state_targets, row_hashes) "
        "SELECT 'r1', 'b1', 'e', 't', 'id', array_agg(g::text), array_agg(g::text), "
        "array_agg(md5(g::text)) FROM generate_series(1, 400) g"
    )


def _nodes(node: dict) -> list[dict]:
    return [node, *(n for c in node.get("Plans", ()) for n in _nodes(c))]


def test_pg_run_aggregate_hash_joins_the_ledger_rows_without_jit(pg_params):
    """Count, sum and per-value counts over the rows a run answers for (mp_ledger.covered:
    here one batch record's state arrays) are right, planned as a hash join (no index probe
    per ledger row) and not JIT-compiled: enable_nestloop = off alone priced the ledger's
    unnest loops at disable_cost and made PostgreSQL JIT-compile each aggregate (~1 s)."""
    connector = connect("postgresql", pg_params)
    connector.ensure_ledger()
    conn, ctx = _cursor_factory(pg_params)
    with ctx() as cur:
        cur.execute("CREATE TABLE t (id bigint PRIMARY KEY, status text, amount numeric(8,2))")
        cur.execute(
            "INSERT INTO t SELECT g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END, "
            "g * 0.5 FROM generate_series(1, 500) g"
        )
        # the run answers for rows 1..400 (row 401..500 belong to no run of ours)
        _run_answers_for_rows_1_to_400(cur)
        cur.execute("SELECT pg_jit_available()")
        jit_available = cur.fetchone()[0]
    plans: list = []
    recording_conn, Recording = _cursor_factory(pg_params, lambda c: _PlanRecorder(c, plans))

    key = ColumnInfo(name="id", data_type="bigint", cast_type="bigint")
    common = {"table": sql.Identifier("t"), "key": key, "run_id": "r1", "entity": "e"}
    count = pg_run_aggregate(Recording, **common)
    total = pg_run_aggregate(Recording, column="amount", **common)
    per_status = pg_run_aggregate(Recording, column="status", by_category=True, **common)
    # what the same query costs with the join setting alone: the fault this test guards
    with ctx() as cur:
        cur.execute("SET LOCAL enable_nestloop = off")
        _PlanRecorder(cur, plans).execute(
            sql.SQL(
                "SELECT count(*) FROM t AS t WHERE EXISTS (SELECT 1 FROM mp_ledger.covered l "
                "WHERE l.run_id = 'r1' AND l.entity = 'e' AND CAST(l.target_key AS bigint) "
                "= t.id)"
            )
        )
    conn.close()
    recording_conn.close()
    assert (count, total, per_status) == (400, 40100, {"a": 133, "b": 267})
    assert len(plans) == 4
    for plan in plans[:3]:
        nodes = _nodes(plan["Plan"])
        assert "JIT" not in plan
        assert {"Hash Semi Join", "Hash Join"} & {n["Node Type"] for n in nodes}
        # the target table read once, not probed per ledger row
        assert [n["Actual Loops"] for n in nodes if n.get("Relation Name") == "t"] == [1]
    assert ("JIT" in plans[3]) == jit_available


def test_pg_run_aggregates_answer_every_aggregate_in_one_statement(pg_params):
    """Count, sums and per-value counts of several columns over the rows a run answers for,
    in ONE scan (a report asked one statement per rule: 7.9 s each at 10 M rows), the same
    answers as one pg_run_aggregate each; a NULL value is the category "" as there."""
    connector = connect("postgresql", pg_params)
    connector.ensure_ledger()
    conn, ctx = _cursor_factory(pg_params)
    with ctx() as cur:
        cur.execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, status text, kind text, amount numeric(8,2), "
            "qty integer)"
        )
        cur.execute(
            "INSERT INTO t SELECT g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END, "
            "CASE WHEN g % 5 = 0 THEN NULL ELSE 'k' || (g % 4) END, g * 0.5, "
            "CASE WHEN g < 10 THEN g END FROM generate_series(1, 500) g"
        )
        cur.execute("UPDATE t SET kind = '' WHERE id IN (1, 2)")  # empty, not NULL
        _run_answers_for_rows_1_to_400(cur)
    texts: list = []
    recording_conn, Recording = _cursor_factory(pg_params, lambda c: Recorder(c, texts))
    key = ColumnInfo(name="id", data_type="bigint", cast_type="bigint")
    common = {"table": sql.Identifier("t"), "key": key, "run_id": "r1", "entity": "e"}
    found = pg_run_aggregates(
        Recording, sums=["amount", "qty"], categories=["status", "kind"], **common
    )
    assert sum(t.startswith("SELECT") for t in texts) == 1
    one_by_one = (
        pg_run_aggregate(Recording, **common),
        {c: pg_run_aggregate(Recording, column=c, **common) for c in ("amount", "qty")},
        {c: pg_run_aggregate(Recording, column=c, by_category=True, **common)
         for c in ("status", "kind")},
    )  # fmt: skip
    nothing = pg_run_aggregates(Recording, sums=["qty"], categories=["kind"], **common | {
        "run_id": "r9"})  # fmt: skip
    conn.close()
    recording_conn.close()
    assert (found.rows, found.sums, found.counts) == one_by_one
    assert (found.counts["kind"][None], found.counts["kind"][""]) == (80, 2)
    assert found.sums["qty"] == 45
    assert (nothing.rows, nothing.sums, nothing.counts) == (0, {"qty": None}, {"kind": {}})


def test_pg_run_aggregates_of_one_category_group_by_hashing_with_the_same_answers(pg_params):
    """One category column (the bench's plan: status): one GROUP BY hashed, no sort of the
    run's rows (GROUPING SETS sorted them all: 8.3 M rows spilled to disk at 10 M), the count
    and sums added up from the groups — the same answers as one pg_run_aggregate each, a
    NULL value the category None (apart from ""), a column of NULLs a NULL sum; rows the run
    did not write (id > 400) and a changed value counted as they are."""
    connector = connect("postgresql", pg_params)
    connector.ensure_ledger()
    conn, ctx = _cursor_factory(pg_params)
    with ctx() as cur:
        cur.execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, kind text, amount numeric(8,2), qty integer)"
        )
        cur.execute(
            "INSERT INTO t SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'k' || (g % 4) END, "
            "g * 0.5, CASE WHEN g % 5 = 0 THEN g END FROM generate_series(1, 500) g"
        )
        cur.execute("UPDATE t SET kind = 'tampered', amount = amount + 0.01 WHERE id = 7")
        cur.execute("UPDATE t SET kind = '' WHERE id IN (1, 2, 3)")  # empty, not NULL
        _run_answers_for_rows_1_to_400(cur)
    texts: list = []
    recording_conn, Recording = _cursor_factory(pg_params, lambda c: Recorder(c, texts))
    key = ColumnInfo(name="id", data_type="bigint", cast_type="bigint")
    common = {"table": sql.Identifier("t"), "key": key, "run_id": "r1", "entity": "e"}
    found = pg_run_aggregates(Recording, sums=["amount", "qty"], categories=["kind"], **common)
    assert sum(t.startswith("SELECT") for t in texts) == 1
    assert not any("GROUPING" in t for t in texts) and any("enable_sort" in t for t in texts)
    one_by_one = (
        pg_run_aggregate(Recording, **common),
        {c: pg_run_aggregate(Recording, column=c, **common) for c in ("amount", "qty")},
        {"kind": pg_run_aggregate(Recording, column="kind", by_category=True, **common)},
    )
    nulls = pg_run_aggregates(Recording, sums=["qty"], categories=["kind"], **common | {
        "run_id": "r9"})  # fmt: skip
    with ctx() as cur:
        cur.execute("SET LOCAL enable_nestloop = off")
        cur.execute("SET LOCAL enable_sort = off")
        cur.execute(
            "EXPLAIN SELECT t.kind::text, count(*) FROM t AS t WHERE EXISTS (SELECT 1 FROM "
            "mp_ledger.covered l WHERE l.run_id = 'r1' AND l.entity = 'e' "
            "AND CAST(l.target_key AS bigint) = t.id) GROUP BY 1"
        )
        plan = "\n".join(r[0] for r in cur.fetchall())
    conn.close()
    recording_conn.close()
    assert (found.rows, found.sums, found.counts) == one_by_one
    assert found.rows == 400 and found.counts["kind"]["tampered"] == 1
    assert (found.counts["kind"][None], found.counts["kind"][""]) == (80, 3)
    assert found.sums["qty"] == sum(range(5, 401, 5))
    assert found.sums["amount"] == Decimal(sum(range(1, 401))) / 2 + Decimal("0.01")
    assert (nulls.rows, nulls.sums, nulls.counts) == (0, {"qty": None}, {"kind": {}})
    assert "HashAggregate" in plan and "Sort" not in plan


def _write_twice(cur, h: sql.Composable, by: str, first: tuple, second: tuple) -> None:
    """Run r1 of entity e wrote t's rows with ``by`` in ``first`` (batch b1), then those in
    ``second`` (b2): the keys both hold twice, b1's hash of them 'stale' (b2's counts)."""
    for batch, (lo, hi), stale in (("b1", first, "'stale'"), ("b2", second, "NULL")):
        cur.execute(
            sql.SQL(
                "INSERT INTO mp_ledger.batch (run_id, batch_id, entity, target_table, "
                "target_key_column, inserted_keys, inserted_hashes) "
                "SELECT 'r1', %s, 'e', 't', 'id', array_agg(t.id::text ORDER BY t.{by}), "
                "array_agg(CASE WHEN t.{by} >= %s THEN coalesce({stale}, {h}) ELSE {h} END "
                "ORDER BY t.{by}) FROM t AS t WHERE t.{by} BETWEEN %s AND %s"
            ).format(by=sql.Identifier(by), stale=sql.SQL(stale), h=h),
            (batch, second[0], lo, hi),
        )


def test_ledger_bounds_read_the_keys_without_sorting_them(pg_params):
    """The ledger side's bounds (min/max key position) are read from its rows without the
    DISTINCT ON sort its checksums need (the bounds depend on the keys only; 2.2 → 1.1 s at
    3 M rows): same diff, a key written twice still counted once, no Sort in the bounds' plan."""
    connector = connect("postgresql", pg_params)
    connector.ensure_ledger()
    conn, ctx = _cursor_factory(pg_params)
    with ctx() as cur:
        cur.execute("CREATE TABLE t (id bigint PRIMARY KEY, name text)")
        cur.execute("INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 300) g")
        row_hash = pg_row_hash_sql(
            [
                ColumnInfo(name="id", data_type="bigint", cast_type="bigint"),
                ColumnInfo(name="name", data_type="text"),
            ]
        )
        # keys 50..300 written by the run, 100..120 twice: the later batch's hash counts
        # (the first wrote them 'stale'); rows 1..49 are not the run's
        _write_twice(cur, row_hash, "id", (50, 120), (100, 300))
        cur.execute("UPDATE t SET name = 'changed' WHERE id = 110")
    plans: list = []
    recording_conn, Recording = _cursor_factory(pg_params, lambda c: _PlanRecorder(c, plans))
    key = ColumnInfo(name="id", data_type="bigint", cast_type="bigint")
    diff = reconcile_pg(
        Recording,
        table=sql.Identifier("t"),
        key=key,
        columns=[key, ColumnInfo(name="name", data_type="text")],
        run_id="r1",
        entity="e",
    )
    conn.close()
    recording_conn.close()
    assert (diff.missing, diff.extra, diff.changed) == ([], [], ["110"])
    assert (diff.expected_rows, diff.actual_rows) == (251, 251)
    bounds = [p for p in plans if p["Plan"]["Node Type"] == "Aggregate"
              and p["Plan"].get("Strategy") == "Plain"
              or p["Plan"]["Node Type"] == "Result"]  # fmt: skip
    assert len(bounds) >= 2  # the ledger's and the target's (an integer key: its index's ends)
    assert all("Sort" not in {n["Node Type"] for n in _nodes(p["Plan"])} for p in bounds)


def test_reconcile_pg_of_a_clean_table_reads_each_side_once_per_question(pg_params):
    """A clean diff: each side's bounds once (the ledger's were read twice: 6.3 s of a 10 M
    report) and each side's first-level checksums once."""
    connect("postgresql", pg_params).ensure_ledger()
    conn, ctx = _cursor_factory(pg_params)
    key = ColumnInfo(name="id", data_type="bigint", cast_type="bigint")
    columns = [key, ColumnInfo(name="name", data_type="text")]
    with ctx() as cur:
        cur.execute("CREATE TABLE t (id bigint PRIMARY KEY, name text)")
        cur.execute("INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 300) g")
        cur.execute(
            sql.SQL(
                "INSERT INTO mp_ledger.batch (run_id, batch_id, entity, target_table, "
                "target_key_column, inserted_keys, inserted_hashes) SELECT 'r1', 'b1', 'e', "
                "'t', 'id', array_agg(t.id::text), array_agg({h}) FROM t AS t"
            ).format(h=pg_row_hash_sql(columns))
        )
    texts: list = []
    recording_conn, Recording = _cursor_factory(pg_params, lambda c: Recorder(c, texts))
    diff = reconcile_pg(
        Recording, table=sql.Identifier("t"), key=key, columns=columns, run_id="r1", entity="e"
    )
    conn.close()
    recording_conn.close()
    assert (diff.clean, diff.expected_rows, diff.levels) == (True, 300, 1)
    selects = [t for t in texts if "AS p, s.k, s.h FROM" in t]  # a side's question
    asked = [("bounds" if "min(p), max(p)" in t else "stats", "covered" in t) for t in selects]
    assert sorted(asked) == [("bounds", False), ("bounds", True), ("stats", False), ("stats", True)]


def _hostile_run(cur, key_type: str) -> None:
    """Table t (key ``key_type``) of 3,000 rows, 5 % of names NULL, whose run r1 wrote keys
    1..2,500 in two batches (1,000..1,200 twice, the first time as 'stale'); then row 10
    tampered, row 21's name NULLed, row 30 moved to key 2,600 (same values), row 40
    deleted."""
    cur.execute(f"CREATE TABLE t (id {key_type} PRIMARY KEY, name text, n integer)")
    cur.execute(
        "INSERT INTO t SELECT g::text::" + key_type + ", CASE WHEN g % 20 = 0 THEN NULL "
        "ELSE 'n' || g END, g FROM generate_series(1, 3000) g"
    )
    h = pg_row_hash_sql(
        [
            ColumnInfo(name="id", data_type=key_type, cast_type=key_type),
            ColumnInfo(name="name", data_type="text"),
            ColumnInfo(name="n", data_type="integer", cast_type="integer"),
        ]
    )
    _write_twice(cur, h, "n", (1, 1200), (1000, 2500))
    cur.execute("DELETE FROM t WHERE n > 2500")  # only the run's rows, then the faults
    cur.execute("UPDATE t SET name = 'tampered' WHERE n = 10")
    cur.execute("UPDATE t SET name = NULL WHERE n = 21")
    cur.execute("UPDATE t SET id = '2600' WHERE n = 30")
    cur.execute("DELETE FROM t WHERE n = 40")


def test_reconcile_pg_checksums_hash_their_buckets_without_sort_jit_or_workers(pg_params):
    """The range checksums of both sides group their ~32 buckets by hashing (the planner
    sorted every row, spilling at 834,122 rows), not JIT-compiled, without parallel workers;
    an integer key is its own position (the target's bounds from its index, no text round
    trip). Same diffs on hostile data: a tampered row, a NULLed value, a row moved to another
    key, a deleted row, a key written twice (its later hash counts) — integer and text keys."""
    connect("postgresql", pg_params).ensure_ledger()
    found = {}
    for key_type in ("bigint", "text"):
        conn, ctx = _cursor_factory(pg_params)
        with ctx() as cur:
            cur.execute("DROP TABLE IF EXISTS t")
            cur.execute("DELETE FROM mp_ledger.batch")
            _hostile_run(cur, key_type)
            cur.execute("ANALYZE t")
        plans: list = []
        recording_conn, Recording = _cursor_factory(pg_params, lambda c: _PlanRecorder(c, plans))
        key = ColumnInfo(name="id", data_type=key_type, cast_type=key_type)
        diff = reconcile_pg(
            Recording,
            table=sql.Identifier("t"),
            key=key,
            columns=[
                key,
                ColumnInfo(name="name", data_type="text"),
                ColumnInfo(name="n", data_type="integer", cast_type="integer"),
            ],  # fmt: skip
            run_id="r1",
            entity="e",
            leaf_rows=50,
        )
        conn.close()
        recording_conn.close()
        found[key_type] = (diff.missing, diff.extra, diff.changed, diff.expected_rows)
        stats = [p for p in plans if "width_bucket" in json.dumps(p)]
        assert len(stats) >= 2 * diff.levels
        for plan in stats:
            nodes = _nodes(plan["Plan"])
            assert plan["Plan"]["Strategy"] == "Hashed"
            assert "JIT" not in plan
            assert not {"Gather", "Gather Merge"} & {n["Node Type"] for n in nodes}
            sorts = [n for n in nodes if n["Node Type"] == "Sort"]
            # the ledger's DISTINCT ON (key, latest batch first) is the one sort left
            assert all("seq DESC" in " ".join(n["Sort Key"]) for n in sorts)
        if key_type == "bigint":
            bounds = [p for p in plans if p["Plan"]["Node Type"] == "Result"
                      and "Relation Name" in json.dumps(p)]  # fmt: skip
            assert bounds  # min/max of the target's key: its index's ends (InitPlans)
            assert all("Seq Scan" not in json.dumps(p) for p in bounds)
    # the moved row: missing at 30, extra at 2600; the tampered and NULLed rows changed;
    # 1000..1200 written twice count once, with their later hash (else 201 would differ)
    assert found["bigint"] == (["30", "40"], ["2600"], ["10", "21"], 2500)
    assert found["text"] == (["30", "40"], ["2600"], ["10", "21"], 2500)
