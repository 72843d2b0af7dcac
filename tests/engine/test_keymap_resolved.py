"""A known set of source keys resolved through the key map at once (``keymap_resolved``): the
same target keys the key map gives once its pending pairs are moved in, without moving them
(the report's sample reads 5 % of a run's keys; moving every pair in was its largest statement:
48 s of a 10 M run's report)."""

from __future__ import annotations

import pytest

from tests.engine.customer_table import customer_rows, load, target_ddl

KEYS = ["A", "B", "C", "D", "E00000", "E00001", "E00009", "nowhere"]


def _set_pending(tpg, run: str, batch: str, pairs: list[tuple[str, str]]) -> None:
    """Stand in for what a batch recorded: its (source key -> target key) arrays."""
    tpg.execute(
        "UPDATE mp_ledger.batch SET keymap_source = %s, keymap_target = %s "
        "WHERE run_id = %s AND batch_id = %s",
        ([p[0] for p in pairs], [p[1] for p in pairs], run, batch),
    )


def _ledger(tpg) -> tuple[list[tuple], list[tuple]]:
    return (
        tpg.execute("SELECT * FROM mp_ledger.keymap ORDER BY source_key"),
        tpg.execute(
            "SELECT run_id, batch_id, keymap_source, keymap_target FROM mp_ledger.batch "
            "ORDER BY seq"
        ),
    )


@pytest.fixture
def layered(tpg):
    """A key map with pairs moved in already (E00000..E00005, by r0) and pending batches over
    it: a key changed and changed back, a key in two batches, a new key, a pending pair that
    remaps a key the key map holds."""
    tpg.script(target_ddl("postgresql"))
    load(tpg.connector, customer_rows(6), run="r0", batch="b0")
    tpg.connector.keymap_lookup("plan", "customer", [])  # r0's pairs moved in
    for run in ("r1", "r2", "r3"):
        load(tpg.connector, customer_rows(1), run=run, batch="b1")
    _set_pending(tpg, "r1", "b1", [("A", "1"), ("B", "20"), ("E00001", "7"), ("D", "4")])
    _set_pending(tpg, "r2", "b1", [("B", "2"), ("C", "3"), ("E00001", "9")])
    _set_pending(tpg, "r3", "b1", [("A", "1"), ("E00009", "10"), ("E00001", "9")])
    return tpg


def test_keymap_resolved_gives_what_the_moved_in_key_map_gives(layered):
    before = _ledger(layered)
    conn = layered.connector
    with conn.keymap_resolved("plan", "customer", [KEYS[:3], KEYS[3:]]) as lookup:
        got = {**lookup(KEYS[:5]), **lookup(KEYS[5:])}
        assert lookup(["not asked for"]) == {}
    assert _ledger(layered) == before  # nothing moved, nothing left behind
    assert got == conn.keymap_lookup("plan", "customer", KEYS)  # now moved in
    assert got == {
        "A": "1",
        "B": "2",
        "C": "3",
        "D": "4",
        "E00000": "1",
        "E00001": "9",
        "E00009": "10",
    }


def test_keymap_resolved_twice_on_one_connection(layered):
    conn = layered.connector
    for _ in range(2):
        with conn.keymap_resolved("plan", "customer", [["C", "E00002"]]) as lookup:
            assert lookup(["C", "E00002"]) == {"C": "3", "E00002": "3"}
    assert layered.execute("SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'pg_temp%'") == [
        (0,)
    ]


def test_keymap_resolved_on_either_connector_after_a_load(tdb):
    tdb.script(target_ddl(tdb.kind))
    load(tdb.connector, customer_rows(3), run="r0", batch="b0")
    with tdb.connector.keymap_resolved("plan", "customer", [["E00001", "x"]]) as lookup:
        assert lookup(["E00001", "x"]) == {"E00001": "2"}
