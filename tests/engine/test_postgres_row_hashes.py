"""PostgreSQL: the ledger hashes the values a run meant to write; a faithful load matches
them, a target that rewrites rows (trigger, datestyle) does not."""

from __future__ import annotations

import threading
import time

import psycopg2
import pyarrow as pa
import pytest

from runs.engine.connectors.base import text_frame
from runs.engine.hashing import arrow_row_hashes, row_hash
from runs.engine.snapshot import EntitySpec, FieldSpec

# ------------------------------------------------------------------ intended row hashes

FAITHFUL = {  # type -> values the column holds as meant: no coercion, ledger == target
    "text": ["", " a ", "é 😀", "x\ny", None],
    "varchar(5)": ["abc", "abc  ", "", None],
    "uuid": [
        "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        "00000000-0000-0000-0000-000000000000",
        "6f9619ff-8b86-d011-b42d-00c04fc964fe",
        "{6f9619ff-8b86-d011-b42d-00c04fc964fd}",
        "6f9619ff8b86d011b42d00c04fc964fc",
        "6f96-19ff-8b86-d011-b42d-00c0-4fc9-64fb",
        None,
    ],
    "integer": ["0", "-12", "2147483647", None, "007", "+5"],
    "bigint": ["-9223372036854775808", "42"],
    "date": ["2024-02-29", "0099-01-01", None],
    "timestamp": ["2024-02-29", "2024-02-29T23:59:59", "1999-12-31 00:00:00", "2024-02-29 10:11"],
    "timestamp(3)": ["2024-02-29T01:02:03", "2024-02-29T01:02:03.123"],
    "timestamptz": ["2024-02-29 10:11:12", "2024-02-29T10:11:12+02:00", "2024-02-29T08:00Z"],
    "numeric(6,2)": ["1.5", "12", "-3.25", "0.10", "0", "12.", "-0.00", "007.5", "1.550", None],
    "numeric(5)": ["12", "12.", "-4", "0"],
    "numeric": ["1.50", "-7", "0.000", "123456789.123456789", "1e3"],
    "char(3)": ["a", "ab ", "", " x", "abc", None],
    "boolean": ["t", "TRUE", "no", "1", None],
    "json": ['{"b": 1, "a": [1, 2]}', "[]", "null", None],
    "jsonb": ['{"b": 1,  "a": "x"}'],
    "double precision": ["0.1", "19.99", "1e20", "-0"],
}


def _one_column_load(tpg, pg_type, values, run="r"):
    tpg.script(
        f"DROP TABLE IF EXISTS rb; CREATE TABLE rb (i serial PRIMARY KEY, "
        f"ext text UNIQUE NOT NULL, v {pg_type})"
    )
    ext = [f"E{i}" for i in range(len(values))]
    rows = text_frame(["ext", "v"], {"ext": ext, "v": values})
    entity = EntitySpec(
        name="rb",
        source_table="src",
        target_table="rb",
        source_key=("ext",),
        target_key="i",
        external_id="ext",
        load_mode="upsert",
        fields=(FieldSpec(target="ext", sources=("ext",)), FieldSpec(target="v", sources=("v",))),
    )
    tpg.connector.introspect()
    return tpg.connector.load_batch(
        entity=entity,
        rows=rows,
        source_keys=ext,
        run_id=run,
        batch_id="b1",
        namespace="plan",
        result_meta={},
    )


@pytest.mark.parametrize("pg_type", sorted(FAITHFUL))
def test_pg_ledger_hashes_the_intended_values_and_a_faithful_load_matches_them(tpg, pg_type):
    """The ledger's hash is that of the values as meant (canonical text per type); a value
    the column holds faithfully (other spelling, same meaning) reads back to the same hash."""
    result = _one_column_load(tpg, pg_type, FAITHFUL[pg_type])
    assert (result.inserted, result.coerced) == (len(FAITHFUL[pg_type]), 0)
    ledger = dict(tpg.execute("SELECT target_key, row_hash FROM mp_ledger.written"))
    assert tpg.connector.row_hashes("rb", "i", list(ledger), columns=["ext", "v"]) == ledger
    assert tpg.connector.read_back_rows == len(FAITHFUL[pg_type])


def test_arrow_row_hashes_equal_row_hash_for_string_and_large_string_columns():
    rows = [("a", None, "é"), ("", "x\x1fy", None), (None, None, None)]
    cols = list(zip(*rows, strict=True))
    arrays = [
        pa.array(cols[0], pa.string()),
        pa.array(cols[1], pa.large_string()),
        pa.array(cols[2], pa.string()),
    ]
    assert arrow_row_hashes(arrays) == [row_hash(r) for r in rows]


def _typed_target(tpg):
    tpg.script(
        "CREATE TABLE typed (id bigserial PRIMARY KEY, ext varchar(20) UNIQUE NOT NULL, "
        "seen timestamp, tag uuid, n integer)"
    )


def _typed_load(conn, n=100, *, run="r", start=0):
    ext = [f"T{i:04d}" for i in range(start, start + n)]
    rows = text_frame(
        ["ext", "seen", "tag", "n"],
        {
            "ext": ext,
            "seen": [
                None if i % 9 == 0 else f"2024-01-{1 + i % 28:02d}" + ("T08:30:00" if i % 2 else "")
                for i in range(n)
            ],
            "tag": [f"{i:08X}-AAAA-4BBB-8CCC-{i:012d}" for i in range(n)],
            "n": [str(i - 50) for i in range(n)],
        },
    )
    fields = tuple(FieldSpec(target=c, sources=(c,)) for c in ("ext", "seen", "tag", "n"))
    entity = EntitySpec(
        name="typed",
        source_table="src",
        target_table="typed",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=fields,
    )
    return conn.load_batch(
        entity=entity,
        rows=rows,
        source_keys=ext,
        run_id=run,
        batch_id="b1",
        namespace="plan",
        result_meta={},
    )


def _ledger_matches_target(tpg, run="r"):
    ledger = dict(
        tpg.execute(
            "SELECT t.ext, w.row_hash FROM mp_ledger.written w JOIN typed t "
            "ON t.id = w.target_key::bigint WHERE w.run_id = %s",
            (run,),
        )
    )
    server = tpg.connector.row_hashes(
        "typed", "ext", sorted(ledger), columns=["ext", "seen", "tag", "n"]
    )
    return len(ledger), ledger == server


def test_pg_ledger_of_a_faithful_load_matches_the_target(tpg):
    _typed_target(tpg)
    _typed_load(tpg.connector)
    assert _ledger_matches_target(tpg) == (100, True)


def test_pg_a_trigger_that_rewrites_rows_makes_them_coerced_and_undone(tpg):
    """A BEFORE trigger adds 1 to n: every row the target changed is taken out again and
    reported (key, column, intended, stored); none stays loaded, none is in the ledger."""
    _typed_target(tpg)
    tpg.execute(
        "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN IF NEW.n >= 0 THEN NEW.n := NEW.n + 1; END IF; RETURN NEW; END$$"
    )
    tpg.execute("CREATE TRIGGER bump BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION bump()")
    result = _typed_load(tpg.connector)
    assert (result.inserted, result.coerced) == (50, 50)
    assert tpg.execute("SELECT count(*), min(n) FROM typed") == [(50, -50)]
    failures = result.result_meta["failures"]
    assert len(failures) == 50 and failures[0]["source_key"] == "T0050"
    assert failures[0]["errors"] == [
        {
            "field": "n",
            "rule": "read_back",
            "value": "0",
            "category": "coerced_by_target",
            "message": "the target stored '1' in n, not the intended '0'",
        }
    ]
    assert _ledger_matches_target(tpg) == (50, True)


def test_pg_a_non_iso_datestyle_changes_nothing_in_the_proof(tpg):
    """psycopg2 sets ISO at connect; a session changed later ('2024-01-02 08:30:00' reads back
    '02/01/2024 08:30:00') still compares equal: canonical text does not use DateStyle."""
    _typed_target(tpg)
    conn = tpg.connector._connection()
    with conn, conn.cursor() as cur:
        cur.execute("SET DateStyle = 'SQL, DMY'")
    result = _typed_load(tpg.connector)
    assert result.coerced == 0
    with conn, conn.cursor() as cur:
        cur.execute("SELECT seen::text FROM typed WHERE ext = 'T0001'")
        assert cur.fetchone() == ("02/01/2024 08:30:00",)
    ledger = dict(tpg.execute("SELECT target_key, row_hash FROM mp_ledger.written"))
    assert (
        tpg.connector.row_hashes("typed", "id", list(ledger), columns=["ext", "seen", "tag", "n"])
        == ledger
    )


def test_pg_upsert_of_new_ids_falls_back_to_on_conflict_when_one_appears_meanwhile(tpg):
    """The plain INSERT of an all-new batch meets a row another session inserted (uncommitted
    when the batch looked): it waits, fails on the unique key, and the batch upserts."""
    _typed_target(tpg)
    other = psycopg2.connect(**{k: v for k, v in tpg.params.items() if v})
    cur = other.cursor()
    cur.execute("INSERT INTO typed (ext, n) VALUES ('T0003', 999)")
    result = {}
    loader = threading.Thread(target=lambda: result.update(r=_typed_load(tpg.connector)))
    loader.start()
    for _ in range(200):  # until the loader waits on the other session's row
        waiting = tpg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
            "'Lock' AND query LIKE 'INSERT INTO%%typed%%'"
        )
        if waiting[0][0]:
            break
        time.sleep(0.05)
    other.commit()
    other.close()
    loader.join(30)
    assert (result["r"].inserted, result["r"].updated) == (99, 1)
    assert tpg.execute("SELECT n FROM typed WHERE ext = 'T0003'") == [(-47,)]
    before = tpg.execute(
        "SELECT before_image->>'n' FROM mp_ledger.written WHERE run_id = 'r' AND action = 'update'"
    )
    assert before == [("999",)]
    assert _ledger_matches_target(tpg) == (100, True)


# ------------------------------------------------------------------ range digests (re-runs)


def test_the_servers_range_digest_is_the_python_digest_of_its_row_hashes(tpg):
    """A re-run compares the source server's digest of a key range with the one a first run
    computed in Python from its extract: both must agree, NULLs and any text included, and
    the digest follows every row's key and content (the key is among the hashed columns, as
    in every batch: ``source_columns`` starts with it; a digest without it is refused)."""
    from runs.engine.connectors.base import KeyRange
    from runs.engine.errors import EngineError
    from runs.engine.unchanged import range_digest

    tpg.script(
        "DROP TABLE IF EXISTS src; CREATE TABLE src (id int PRIMARY KEY, a text, b text);"
        "INSERT INTO src VALUES (1, 'x', NULL), (2, ' é 😀', 'y\nz'), (3, '', 'q'), (7, 'w', 'v')"
    )
    conn = tpg.connector
    conn.introspect()
    whole = KeyRange(None, (3,))  # lower bound exclusive, upper inclusive: ids 1 to 3
    keys, hashes = conn.source_row_hashes("src", ["id", "a", "b"], ["id"], whole)
    digest = conn.source_range_digest("src", ["id", "a", "b"], ["id"], whole)
    assert keys == ["1", "2", "3"]
    assert digest == range_digest(hashes) == range_digest(hashes[::-1])
    assert digest.startswith("s3:3:")
    tpg.script("UPDATE src SET b = 'changed' WHERE id = 2")
    assert conn.source_range_digest("src", ["id", "a", "b"], ["id"], whole) != digest
    tpg.script("UPDATE src SET b = 'y\nz' WHERE id = 2")
    assert conn.source_range_digest("src", ["id", "a", "b"], ["id"], whole) == digest
    empty = conn.source_range_digest("src", ["id", "a", "b"], ["id"], KeyRange((3,), (6,)))
    assert empty == range_digest([])
    # a row's key is in its source hash: the same values under another key differ too
    tpg.script("UPDATE src SET id = 4 WHERE id = 3; UPDATE src SET id = 3 WHERE id = 7")
    tpg.script("UPDATE src SET a = '', b = 'q' WHERE id = 3")
    assert conn.source_range_digest("src", ["id", "a", "b"], ["id"], whole) == digest
    tpg.script("UPDATE src SET id = 0 WHERE id = 1")
    assert conn.source_range_digest("src", ["id", "a", "b"], ["id"], whole) != digest
    with pytest.raises(EngineError, match="key"):  # nothing would bind a row to its key
        conn.source_range_digest("src", ["a", "b"], ["id"], whole)
    # many rows (the server sorts their hashes as bytes, Python as hex text: the same order)
    tpg.script("INSERT INTO src SELECT i, md5(i::text), NULL FROM generate_series(10, 400) i")
    many = KeyRange((7,), None)
    _, hashes = conn.source_row_hashes("src", ["id", "a", "b"], ["id"], many)
    assert len(hashes) == 391
    assert conn.source_range_digest("src", ["id", "a", "b"], ["id"], many) == range_digest(hashes)


def test_a_range_digest_tells_apart_row_hashes_whose_sums_agree():
    """The digest is sha256 of the range's row hashes in sorted order, not a sum: two ranges
    whose 64-bit halves add up alike (1 + 4 = 2 + 3, in both halves) still differ, and only
    the same multiset of hashes, in any order, gives the same digest."""
    from runs.engine.unchanged import range_digest

    def h(n: int) -> str:
        return f"{n:016x}{n:016x}"

    assert range_digest([h(1), h(4)]) != range_digest([h(2), h(3)])
    assert range_digest([h(1), h(4)]) == range_digest([h(4), h(1)])
    assert range_digest([h(1), h(1)]) != range_digest([h(1)])
    assert range_digest([]) != range_digest([h(0)])


class _Recorded:
    """A cursor that notes each statement it is given (the connector's own, passed through)."""

    def __init__(self, cur, seen: list) -> None:
        self._cur, self._seen = cur, seen

    def execute(self, query, *args):
        result = self._cur.execute(query, *args)
        self._seen.append(("execute", len(self._cur.description or ())))
        return result

    def copy_expert(self, query, *args):
        self._seen.append(("copy_expert", str(query)[:40]))
        return self._cur.copy_expert(query, *args)

    def __getattr__(self, name):
        return getattr(self._cur, name)


def test_pg_row_hashes_are_the_servers_and_still_catch_a_changed_row(tpg, monkeypatch):
    """The server hashes the rows: one statement answering key and hash, two columns (the
    bench's reconciliation of 8.3 M rows spent most of its time in a Python tuple of every
    column's text and row_hash per row); the answer is the ledger's, and a row changed in the
    target differs."""
    import contextlib

    _typed_target(tpg)
    _typed_load(tpg.connector)
    assert _ledger_matches_target(tpg) == (100, True)
    tpg.execute("UPDATE typed SET n = n + 1000 WHERE ext = 'T0007'")
    tpg.execute("UPDATE typed SET seen = NULL, tag = NULL WHERE ext = 'T0008'")
    ledger = dict(
        tpg.execute(
            "SELECT t.ext, w.row_hash FROM mp_ledger.written w JOIN typed t "
            "ON t.id = w.target_key::bigint"
        )
    )
    seen: list = []
    real = tpg.connector._tx

    @contextlib.contextmanager
    def recorded():
        with real() as cur:
            yield _Recorded(cur, seen)

    monkeypatch.setattr(tpg.connector, "_tx", recorded)
    found = tpg.connector.row_hashes(
        "typed", "ext", sorted(ledger), columns=["ext", "seen", "tag", "n"]
    )
    assert [k for k in ledger if found[k] != ledger[k]] == ["T0007", "T0008"]
    assert seen == [("execute", 2)]
    assert tpg.connector.row_hashes("typed", "ext", ["nope"], columns=["ext"]) == {}
