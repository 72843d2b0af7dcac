"""The key-map pairs batches keep as arrays in their ledger record, moved into mp_ledger.keymap
on the first lookup: in one set-based statement whatever the number of pending batches, with
the same result as applying each batch's upsert in commit order."""

from __future__ import annotations

import psycopg2.extensions
import pytest

from runs.engine.connectors.postgres import PostgresConnector
from tests.engine.customer_table import customer_rows, load, target_ddl


class _Counting(psycopg2.extensions.cursor):
    """A real cursor that counts the statements it runs (no behaviour changed)."""

    executed: list[str] = []

    def execute(self, query, vars=None):  # noqa: A002 - psycopg2's signature
        _Counting.executed.append(str(query))
        return super().execute(query, vars)


@pytest.fixture
def counted(pg_params):
    _Counting.executed = []
    conn = PostgresConnector({**pg_params, "cursor_factory": _Counting})
    yield conn
    conn.close()


def _pending(tpg, batches: int) -> None:
    tpg.script(target_ddl("postgresql"))
    for i in range(batches):
        load(tpg.connector, customer_rows(3, start=3 * i), run="r0", batch=f"b{i}")


def _materialize_statements(counted) -> int:
    counted.keymap_lookup("plan", "customer", [])  # moves every pending batch in
    return sum("mp_ledger.keymap" in q and "INSERT" in q for q in _Counting.executed)


@pytest.mark.parametrize("batches", [2, 7])
def test_pending_pairs_go_in_with_one_insert_whatever_the_number_of_batches(tpg, counted, batches):
    _pending(tpg, batches)
    assert _materialize_statements(counted) == 1
    assert tpg.execute("SELECT count(*), count(DISTINCT batch_id) FROM mp_ledger.keymap") == [
        (3 * batches, batches)
    ]
    assert tpg.execute("SELECT count(*) FROM mp_ledger.batch WHERE keymap_source IS NOT NULL") == [
        (0,)
    ]
    assert counted.keymap_lookup("plan", "customer", ["E00004"]) == {"E00004": "5"}


def _set_pending(tpg, run: str, batch: str, pairs: list[tuple[str, str]]) -> None:
    """Stand in for what a batch recorded: its (source key -> target key) arrays."""
    tpg.execute(
        "UPDATE mp_ledger.batch SET keymap_source = %s, keymap_target = %s "
        "WHERE run_id = %s AND batch_id = %s",
        ([p[0] for p in pairs], [p[1] for p in pairs], run, batch),
    )


def _keymap(tpg) -> list[tuple]:
    return tpg.execute(
        "SELECT source_key, target_key, run_id, batch_id FROM mp_ledger.keymap ORDER BY 1"
    )


def test_pending_batches_sharing_keys_give_what_commit_order_upserts_give(tpg, counted):
    """Keys in more than one pending batch: the later batch's target key wins; a batch mapping
    a key to the target key it has already keeps the pair's first creator."""
    tpg.script(target_ddl("postgresql"))
    for run, batch in (("r0", "b1"), ("r1", "b1"), ("r2", "b1")):
        load(tpg.connector, customer_rows(1), run=run, batch=batch)
    _set_pending(tpg, "r0", "b1", [("A", "1"), ("B", "2"), ("C", "3")])
    _set_pending(tpg, "r1", "b1", [("A", "1"), ("B", "20"), ("D", "4")])
    _set_pending(tpg, "r2", "b1", [("B", "2"), ("C", "3")])
    counted.keymap_lookup("plan", "customer", [])
    assert _keymap(tpg) == [
        ("A", "1", "r0", "b1"),  # the same pair again: the first creator kept
        ("B", "2", "r2", "b1"),  # 2 -> 20 -> 2: the last change made it
        ("C", "3", "r0", "b1"),
        ("D", "4", "r1", "b1"),
    ]


def test_pending_pairs_over_an_existing_key_map_are_upserted(tpg, counted):
    _pending(tpg, 2)
    counted.keymap_lookup("plan", "customer", [])
    load(tpg.connector, customer_rows(4, name="m"), run="r1", batch="b0")  # same rows again
    _set_pending(tpg, "r1", "b0", [("E00000", "1"), ("E00001", "9"), ("E00009", "10")])
    _Counting.executed = []
    assert _materialize_statements(counted) == 1
    assert _keymap(tpg)[:2] == [("E00000", "1", "r0", "b0"), ("E00001", "9", "r1", "b0")]
    assert ("E00009", "10", "r1", "b0") in _keymap(tpg)
    # a rolled-back batch takes its own pairs with it
    tpg.connector.rollback_batch("r1", "b0")
    assert [r for r in _keymap(tpg) if r[2] == "r1"] == []


def test_a_key_changed_and_changed_back_by_pending_batches_ends_as_the_last_one_left_it(
    tpg, counted
):
    _pending(tpg, 1)
    counted.keymap_lookup("plan", "customer", [])  # E00000 -> 1 by r0
    for run in ("r1", "r2"):
        load(tpg.connector, customer_rows(1), run=run, batch="b0")
    _set_pending(tpg, "r1", "b0", [("E00000", "7"), ("E00001", "9")])
    _set_pending(tpg, "r2", "b0", [("E00000", "1")])
    counted.keymap_lookup("plan", "customer", [])
    assert _keymap(tpg)[:2] == [("E00000", "1", "r2", "b0"), ("E00001", "9", "r1", "b0")]
