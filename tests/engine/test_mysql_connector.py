"""MySQL/MariaDB source connector on a real server (TEST_MYSQL_URL, started by scripts/test.sh)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from runs.engine.batch import execute_batch
from runs.engine.connectors import KeyRange, connect
from runs.engine.errors import EngineError, SchemaError, TransientError
from runs.engine.snapshot import EntitySpec, FieldSpec, PlanSnapshot, RuleStepSpec
from tests.support import mysql


class My:
    """Raw SQL on the test database plus the connector under test."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.raw = mysql.raw(params["dbname"])
        self.connector = connect("mysql", params)

    def script(self, statements: str, rows: dict[str, list[tuple]] | None = None) -> None:
        with self.raw.cursor() as cur:
            for stmt in statements.split(";"):
                if stmt.strip():
                    cur.execute(stmt)
            for insert, values in (rows or {}).items():
                cur.executemany(insert, values)


@pytest.fixture
def my(mysql_params: dict[str, Any]) -> Iterator[My]:
    handle = My(mysql_params)
    try:
        yield handle
    finally:
        handle.connector.close()
        handle.raw.close()


def covered(conn, table, cols, key, batch, **kw) -> tuple[list, list[KeyRange]]:
    """Every row of every key range, in range order, plus the ranges."""
    ranges = conn.key_ranges(table, key, batch, **kw)
    rows = []
    for r in ranges:
        frame = conn.extract(table, cols, key, KeyRange.from_dict(r.to_dict()), **kw)
        rows.extend(frame.itertuples(index=False, name=None))
    return rows, ranges


def test_introspect_reads_columns_keys_views_and_types(my):
    my.script(
        "CREATE TABLE customer (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, "
        "code varchar(12) CHARACTER SET latin1 NOT NULL, name varchar(40), "
        "balance decimal(10,2) DEFAULT 0, born date, seen datetime(6), "
        "touched timestamp NULL, photo blob, flags bit(3), region char(2), "
        "upper_code varchar(12) AS (UPPER(code)) VIRTUAL, "
        "UNIQUE KEY code_region (code, region), KEY by_name (name));"
        "CREATE VIEW active AS SELECT id, name FROM customer"
    )
    schema = my.connector.introspect()
    assert set(schema.tables) == {"customer", "active"}
    t = schema.table("customer")
    assert t.primary_key == ("id",)
    assert t.unique == (("id",), ("code", "region"))
    cols = {c.name: c for c in t.columns}
    assert [c.name for c in t.columns][:3] == ["id", "code", "name"]
    assert cols["id"].data_type in ("int(10) unsigned", "int unsigned")  # MariaDB / MySQL 8
    assert cols["id"].cast_type == "int"
    assert cols["id"].primary_key and cols["id"].has_default and not cols["id"].nullable
    assert (cols["code"].max_length, cols["code"].nullable) == (12, False)
    assert (cols["name"].max_length, cols["name"].nullable, cols["name"].has_default) == (
        40,
        True,
        False,
    )
    assert (cols["balance"].cast_type, cols["balance"].has_default) == ("decimal", True)
    assert cols["region"].max_length == 2
    assert cols["upper_code"].generated and not cols["code"].generated
    assert schema.table("active").column_names == ("id", "name")
    with pytest.raises(SchemaError, match="nope"):
        schema.table("nope")


def test_text_forms_null_empty_unicode_and_charset(my):
    my.script(
        "CREATE TABLE t (id int PRIMARY KEY, s varchar(20), l varchar(20) CHARACTER SET latin1, "
        "d decimal(8,2), f double, dt date, ts datetime(6), stamp timestamp NULL, b varbinary(4), "
        "bits bit(4), e enum('a','b'), j longtext)",
        {
            "INSERT INTO t VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)": [
                (1, None, None, None, None, None, None, None, None, None, None, None),
                (
                    2,
                    "",
                    "",
                    "0",
                    "0",
                    "2024-02-29",
                    "2024-02-29 23:59:59.5",
                    "2024-03-01 00:00:00",
                    b"\x00\xff",
                    5,
                    "b",
                    '{"k": [1, 2]}',
                ),
                (
                    3,
                    "Zoë 😀",
                    "café",
                    "-12.5",
                    "1.25",
                    "1999-12-31",
                    "2000-01-01 00:00:00",
                    None,
                    b"",
                    0,
                    "a",
                    "",
                ),
                (
                    4,
                    'q"\\\t\n\x01\u2028/',
                    "\\N",
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    "null",
                ),
            ]
        },
    )
    my.raw.cursor().execute("SET SESSION time_zone = '+02:00'")  # the connector reads UTC
    with my.raw.cursor() as cur:
        cur.execute("UPDATE t SET stamp = '2024-03-01 02:00:00' WHERE id = 3")
    cols = ["id", "s", "l", "d", "f", "dt", "ts", "stamp", "b", "bits", "e", "j"]
    frame = my.connector.extract("t", cols, ["id"], KeyRange())
    assert list(frame.itertuples(index=False, name=None)) == [
        ("1", None, None, None, None, None, None, None, None, None, None, None),
        (
            "2",
            "",
            "",
            "0.00",
            "0",
            "2024-02-29",
            "2024-02-29 23:59:59.500000",
            "2024-03-01 00:00:00",
            "\\x00ff",
            "5",
            "b",
            '{"k": [1, 2]}',
        ),
        (
            "3",
            "Zoë 😀",
            "café",
            "-12.50",
            "1.25",
            "1999-12-31",
            "2000-01-01 00:00:00.000000",
            "2024-03-01 00:00:00",
            "\\x",
            "0",
            "a",
            "",
        ),
        ("4", 'q"\\\t\n\x01\u2028/', "\\N", None, None, None, None, None, None, None, None, "null"),
    ]
    text = my.connector.extract_text("t", cols, ["id"], KeyRange())
    assert text.astype(object).where(text.notna(), None).values.tolist() == (frame.values.tolist())
    assert str(text.dtypes.iloc[0]).startswith("string")
    assert all(v is None or isinstance(v, str) for v in frame.to_numpy().ravel())


@pytest.mark.parametrize("batch", [1, 7, 64, 10_000])
def test_key_ranges_cover_every_row_once_integer_key(my, batch):
    ids = [i * 3 for i in range(1, 301)] + [2**31 - 1, -5]
    my.script(
        "CREATE TABLE t (id int PRIMARY KEY, v varchar(12))",
        {"INSERT INTO t VALUES (%s, %s)": [(i, f"v{i}") for i in ids]},
    )
    rows, ranges = covered(my.connector, "t", ["id", "v"], ["id"], batch)
    assert [int(r[0]) for r in rows] == sorted(ids)
    assert len(ranges) == -(-len(ids) // batch)  # ceil: no empty last range
    assert ranges[0].lower is None and ranges[-1].upper is None
    assert my.connector.count("t") == len(ids)


def test_unsigned_bigint_and_decimal_keys_compare_exactly(my):
    big = [2**64 - 1 - i for i in range(6)]  # beyond a double's 53 bits
    my.script(
        "CREATE TABLE u (id bigint unsigned PRIMARY KEY);"
        "CREATE TABLE d (id decimal(30,10) PRIMARY KEY)",
        {
            "INSERT INTO u VALUES (%s)": [(b,) for b in big],
            "INSERT INTO d VALUES (%s)": [
                ("12345678901234567890.0000000001",),
                ("12345678901234567890.0000000002",),
                ("12345678901234567890.0000000003",),
            ],
        },
    )
    rows, ranges = covered(my.connector, "u", ["id"], ["id"], 2)
    assert [int(r[0]) for r in rows] == sorted(big) and len(ranges) == 3  # ceil(6 / 2)
    rows, ranges = covered(my.connector, "d", ["id"], ["id"], 1)
    assert [r[0][-1] for r in rows] == ["1", "2", "3"] and len(ranges) == 3


@pytest.mark.parametrize("batch", [1, 3, 5, 100])
def test_composite_text_key_follows_the_column_collation(my, batch):
    # utf8mb4_unicode_ci: 'a' < 'B' < 'é' < 'z' whatever the byte order; ranges must agree
    keys = [("a", 1), ("a", 2), ("B", 1), ("é", 1), ("é", 3), ("z", 0), ("Zz", 9), ("", 4)]
    my.script(
        "CREATE TABLE c (k varchar(5) NOT NULL, n int NOT NULL, v text, PRIMARY KEY (k, n))",
        {"INSERT INTO c VALUES (%s, %s, %s)": [(k, n, f"{k}{n}") for k, n in keys]},
    )
    rows, _ = covered(my.connector, "c", ["k", "n", "v"], ["k", "n"], batch)
    assert len(rows) == len(keys) and len(set(rows)) == len(keys)
    assert [r[:2] for r in rows] == [
        ("", "4"),
        ("a", "1"),
        ("a", "2"),
        ("B", "1"),
        ("é", "1"),
        ("é", "3"),
        ("z", "0"),
        ("Zz", "9"),
    ]


def test_delta_watermark_count_ranges_and_max(my):
    my.script(
        "CREATE TABLE t (id int PRIMARY KEY, changed datetime NOT NULL)",
        {"INSERT INTO t VALUES (%s, %s)": [(i, f"2024-01-{i:02d} 10:00:00") for i in range(1, 21)]},
    )
    since = ("changed", "2024-01-15 10:00:00")
    assert my.connector.count("t", changed_since=since) == 5
    rows, _ = covered(my.connector, "t", ["id"], ["id"], 2, changed_since=since)
    assert [r[0] for r in rows] == ["16", "17", "18", "19", "20"]
    assert my.connector.max_value("t", "changed") == "2024-01-20 10:00:00"
    assert my.connector.key_ranges("t", ["id"], 5, changed_since=("changed", "2030-01-01")) == []
    with pytest.raises(EngineError, match="watermark"):
        my.connector.count("t", changed_since=("id", "not a number"))


def test_fetch_keys_and_duplicates(my):
    my.script(
        "CREATE TABLE p (id int PRIMARY KEY, email varchar(40));"
        "CREATE TABLE c (k varchar(5), n int, PRIMARY KEY (k, n))",
        {
            "INSERT INTO p VALUES (%s, %s)": [
                (1, "a@x"),
                (2, "A@x"),
                (3, "b@x"),
                (4, "b@x"),
                (5, None),
                (6, None),
            ],
            "INSERT INTO c VALUES (%s, %s)": [("x|y", 1), ("q", 2)],
        },
    )
    conn = my.connector
    assert conn.fetch_keys("p", ["id"], ["1", "3", "9", "abc", ""]) == {"1", "3"}
    assert conn.fetch_keys("c", ["k", "n"], ["q|2", "q|3", "x|y|1", "nope"]) == {"q|2"}
    keys = [str(i) for i in range(2500)]  # more than one IN chunk
    assert conn.fetch_keys("p", ["id"], keys) == {"1", "2", "3", "4", "5", "6"}
    # duplicates are counted under the column's collation (a@x = A@x in a _ci collation)
    assert conn.duplicate_values("p", "email") == (2, ["a@x", "b@x"])
    assert conn.duplicate_values("p", "email", limit=1) == (2, ["a@x"])
    assert conn.duplicate_values("p", "id") == (0, [])


def test_odd_identifiers_are_quoted_and_unknown_ones_refused(my):
    my.script(
        "CREATE TABLE `we``ird %s tbl` (`i d` int PRIMARY KEY, `a``b %` varchar(5))",
        {"INSERT INTO `we``ird %%s tbl` VALUES (%s, %s)": [(1, "x"), (2, "y%")]},
    )
    conn = my.connector
    rows, _ = covered(conn, "we`ird %s tbl", ["i d", "a`b %"], ["i d"], 1)
    assert rows == [("1", "x"), ("2", "y%")]
    assert conn.count("we`ird %s tbl") == 2
    assert conn.fetch_keys("we`ird %s tbl", ["i d"], ["2"]) == {"2"}
    assert conn.max_value("we`ird %s tbl", "a`b %") == "y%"
    with pytest.raises(SchemaError, match="does not exist"):
        conn.extract("we`ird %s tbl", ["`; DROP TABLE x; --"], ["i d"], KeyRange())
    with pytest.raises(SchemaError, match="does not exist"):
        conn.count("t` WHERE 1=1; --")
    assert conn.count("we`ird %s tbl") == 2


def test_mysql_is_a_source_only_and_connection_errors_are_transient(my, mysql_params):
    with pytest.raises(EngineError, match="sources only"):
        my.connector.ensure_ledger()
    with pytest.raises(EngineError, match="sources only"):
        my.connector.load_batch(
            entity=None,
            rows=None,
            source_keys=[],
            run_id="r",
            batch_id="b",
            namespace="n",
            result_meta={},
        )
    assert my.connector.server_version().split()[0] in ("MySQL", "MariaDB")
    closed = connect("mysql", {**mysql_params, "port": 9, "connect_timeout": 2})
    with pytest.raises(TransientError, match="cannot connect to MySQL"):
        closed.introspect()
    wrong = connect("mysql", {**mysql_params, "password": "wrong-password"})
    with pytest.raises(EngineError, match="Access denied") as info:
        wrong.introspect()
    assert "wrong-password" not in str(info.value)


def test_batch_from_mysql_into_postgresql(my, tpg):
    """A whole batch: MySQL extract -> rules -> PostgreSQL load + ledger, twice = once."""
    my.script(
        "CREATE TABLE legacy (id int PRIMARY KEY, name varchar(30), phone varchar(20), "
        "born varchar(12))",
        {
            "INSERT INTO legacy VALUES (%s, %s, %s, %s)": [
                (1, " Zoë ", "0151 234 567", "31.12.1999"),
                (2, "Bob", "n/a", "1980-02-30"),
                (3, None, "", None),
                *[(i, f"P{i}", None, "2001-01-01") for i in range(4, 31)],
            ]
        },
    )
    tpg.script(
        "CREATE TABLE person (id serial PRIMARY KEY, ext varchar(10) NOT NULL UNIQUE, "
        "name text, born date)"
    )
    entity = EntitySpec(
        name="person",
        source_table="legacy",
        target_table="person",
        source_key=("id",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(
            FieldSpec("ext", ("id",)),
            FieldSpec("name", ("name",), steps=(RuleStepSpec("trim"),)),
            FieldSpec(
                "born",
                ("born",),
                steps=(RuleStepSpec("parse_date", {"formats": ["%d.%m.%Y", "%Y-%m-%d"]}),),
            ),
        ),
    )
    snap = PlanSnapshot(plan="my2pg", version=1, entities=(entity,))
    ranges = my.connector.key_ranges("legacy", ["id"], 8)
    assert len(ranges) == 4

    def run_all():
        return [
            execute_batch(
                snapshot=snap,
                entity=entity,
                key_range=r,
                source=my.connector,
                target=tpg.connector,
                run_id="run-1",
                batch_id=f"b{i}",
            )
            for i, r in enumerate(ranges)
        ]

    outcomes = run_all()
    assert sum(o.extracted for o in outcomes) == 30
    assert sum(o.loaded for o in outcomes) == 29
    [failure] = [f for o in outcomes for f in o.failures]
    assert (failure.source_key, failure.field, failure.stage) == ("2", "born", "transform")
    snapshot_rows = tpg.execute("SELECT ext, name, born::text FROM person ORDER BY ext::int")
    assert snapshot_rows[:3] == [
        ("1", "Zoë", "1999-12-31"),
        ("3", None, None),
        ("4", "P4", "2001-01-01"),
    ]
    again = run_all()
    assert all(o.already_done for o in again)
    assert tpg.execute("SELECT ext, name, born::text FROM person ORDER BY ext::int") == (
        snapshot_rows
    )


def test_zero_dates_and_a_server_sql_mode_with_ansi_quotes_and_no_backslash_escapes(
    my, mysql_params
):
    """Legacy servers: zero dates in a datetime key, and a global sql_mode that changes how
    quotes and backslashes parse; every row still arrives exactly once, values intact."""
    with my.raw.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.sql_mode")
        saved = cur.fetchone()[0]
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("CREATE TABLE d (at datetime PRIMARY KEY, v varchar(20))")
        cur.executemany(
            "INSERT INTO d VALUES (%s, %s)",
            [
                ("0000-00-00 00:00:00", "a\\b \"q\" 's'"),
                ("2024-01-01 00:00:00", "x"),
                ("2024-01-01 00:00:01", None),
                ("9999-12-31 23:59:59", ""),
            ],
        )
        cur.execute("SET GLOBAL sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'")
    conn = connect("mysql", mysql_params)  # a new session: takes the global mode
    try:
        rows, ranges = covered(conn, "d", ["at", "v"], ["at"], 1)
        assert rows == [
            ("0000-00-00 00:00:00", "a\\b \"q\" 's'"),
            ("2024-01-01 00:00:00", "x"),
            ("2024-01-01 00:00:01", None),
            ("9999-12-31 23:59:59", ""),
        ]
        assert len(ranges) == 4  # ceil(4 / 1): no empty last range
        assert conn.fetch_keys(
            "d", ["at"], ["0000-00-00 00:00:00", "2024-01-01 00:00:01", "2024-01-01"]
        ) == {"0000-00-00 00:00:00", "2024-01-01 00:00:01", "2024-01-01 00:00:00"}
        assert conn.count("d", changed_since=("at", "2024-01-01 00:00:00")) == 2
    finally:
        conn.close()
        with my.raw.cursor() as cur:
            cur.execute("SET GLOBAL sql_mode = %s", (saved,))
