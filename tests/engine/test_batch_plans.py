"""A batch's statements stay bounded by the batch, however large the target (issue 20: the
10 M-row run took 17 times the 1 M one, its batches slowing as the target grew).

Every statement a PostgreSQL ``load_batch`` runs must reach the target table through an index
(by the batch's keys), never by reading the whole table: the planner's estimates for the
load's unanalysed temp table and its key arrays are far off, and a hash join over a sequential
scan of the target costs time in proportion to the rows loaded so far. The plans come from
``auto_explain`` (every statement, nested ones too), sent to the test's connection.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from runs.engine.unchanged import RowState
from tests.engine.customer_table import WEIRD, customer_entity, customer_rows, target_ddl

TARGET_ROWS = 50_000  # already in the target: big enough that a full scan is a real choice
BATCH = 2_000


def _explain_everything(connector: Any) -> collections.deque:
    """auto_explain on the connector's own connection, plans (JSON) sent to it as notices."""
    conn = connector._connection()
    conn.notices = collections.deque()  # every message (a list keeps only the last 50)
    with conn.cursor() as cur:
        cur.execute("LOAD 'auto_explain'")
        for name, value in (
            ("auto_explain.log_min_duration", "0"),
            ("auto_explain.log_nested_statements", "on"),
            ("auto_explain.log_format", "json"),
            ("client_min_messages", "log"),
        ):
            cur.execute("SELECT set_config(%s, %s, false)", (name, value))
    conn.commit()
    return conn.notices


def _plans(notices: collections.deque) -> list[dict]:
    out = []
    for message in notices:
        if "plan:" in message:
            out.append(json.loads(message.split("plan:", 1)[1]))
    return out


def _scans(node: dict, table: str) -> list[str]:
    """The node types reading ``table`` anywhere in a plan tree."""
    found = [node["Node Type"]] if node.get("Relation Name") == table else []
    for child in node.get("Plans", []):
        found += _scans(child, table)
    return found


def _full_scans(plans: list[dict], table: str) -> list[str]:
    return [
        " ".join(p["Query Text"].split())[:70]
        for p in plans
        if "Seq Scan" in _scans(p["Plan"], table)
    ]


def _populated_target(tpg: Any) -> None:
    tpg.script(target_ddl("postgresql"))
    tpg.execute(
        f'INSERT INTO customer (ext, name, age, "weird ""name""") '
        f"SELECT 'X' || lpad(g::text, 6, '0'), 'old', g % 90, 'w' FROM generate_series(1, "
        f"{TARGET_ROWS}) g"
    )
    tpg.execute("ANALYZE customer")


def _load(tpg: Any, rows: Any, batch: str, *, skip_unchanged: bool = False) -> Any:
    return tpg.connector.load_batch(
        entity=customer_entity(),
        rows=rows,
        source_keys=list(rows["ext"]),
        run_id="run-1",
        batch_id=batch,
        namespace="plan",
        result_meta={},
        skip_unchanged=skip_unchanged,
    )


def test_a_first_load_into_a_large_target_reads_no_target_row_but_by_its_keys(tpg):
    _populated_target(tpg)
    notices = _explain_everything(tpg.connector)
    result = _load(tpg, customer_rows(BATCH), "b1")
    plans = _plans(notices)
    assert (result.inserted, tpg.connector.read_back_rows) == (BATCH, BATCH)
    assert any(_scans(p["Plan"], "customer") for p in plans)  # the plans were seen
    assert _full_scans(plans, "customer") == []


def test_an_upsert_over_existing_rows_reads_no_target_row_but_by_its_keys(tpg):
    _populated_target(tpg)
    _load(tpg, customer_rows(BATCH), "b1")
    rows = customer_rows(BATCH)
    rows.iloc[: BATCH // 2, rows.columns.get_loc(WEIRD)] = "changed"  # half differ
    notices = _explain_everything(tpg.connector)
    result = _load(tpg, rows, "b2", skip_unchanged=True)
    plans = _plans(notices)
    assert (result.updated, result.unchanged) == (BATCH // 2, BATCH // 2)
    assert tpg.connector.read_back_rows == BATCH
    assert _full_scans(plans, "customer") == []


def test_a_rerun_finds_its_unchanged_rows_by_their_keys_in_a_large_target(tpg):
    _populated_target(tpg)
    rows = customer_rows(BATCH)
    keys = list(rows["ext"])
    hashes = [f"h{k}" for k in keys]
    state = RowState("rules", hashes, keys[0], keys[-1])
    tpg.connector.load_batch(
        entity=customer_entity(),
        rows=rows,
        source_keys=keys,
        run_id="run-1",
        batch_id="b1",
        namespace="plan",
        result_meta={},
        skip_unchanged=True,
        row_state=state,
    )
    notices = _explain_everything(tpg.connector)
    carried = tpg.connector.unchanged_rows(
        entity=customer_entity(),
        namespace="plan",
        rules_hash="rules",
        source_keys=keys,
        source_hashes=hashes,
    )
    assert carried.source_keys == keys
    assert _full_scans(_plans(notices), "customer") == []
