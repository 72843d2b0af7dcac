"""A sample block compared column by column (``_compare_block``) gives what the comparison
value by value (``compare_rows``) gives: the same differences in the same order — tampered
values, a NULL stored for a value and back, numbers and dates equal in another spelling, rows
the target lacks, keys the key map does not know — and equal values never reach
``values_equal``."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.reconcile import compare_rows
from runs.engine.rules import TEXT
from validation.reconciliation import checks
from validation.reconciliation.checks import _sample_block, _text

COLUMNS = ["name", "amount", "created"]
VALUES = st.one_of(
    st.none(),
    st.sampled_from(["1", "1.0", "01", "2024-01-02", "2024-01-02T00:00:00", "x", "", " x", "é"]),
    st.text(max_size=4),
)


def _value_by_value(part: pd.DataFrame, targets: dict, actual: dict) -> list[dict]:
    """The comparison as it was before the column path (the reference)."""
    texts = [[_text(v) for v in part[c].to_numpy(dtype=object)] for c in COLUMNS]
    expected = {
        targets.get(k, f"source {k}"): dict(zip(COLUMNS, values, strict=True))
        for k, values in zip(part.index, zip(*texts, strict=True), strict=True)
    }
    found = compare_rows(expected, actual)
    business = {t: s for s, t in targets.items()}
    for d in found:
        d["business_key"] = business.get(d["key"], d["key"].removeprefix("source "))
    return found


@st.composite
def blocks(draw):  # noqa: ANN201 - (part, targets, actual)
    n = draw(st.integers(0, 12))
    keys = [f"s{i}" for i in range(n)]
    rows = {c: [draw(VALUES) for _ in keys] for c in COLUMNS}
    part = pd.DataFrame(
        {c: pd.array(rows[c], dtype=TEXT) for c in COLUMNS}, index=pd.Index(keys, dtype=object)
    )
    targets = {k: f"t{i}" for i, k in enumerate(keys) if draw(st.integers(0, 9))}  # some unmapped
    actual = {}
    for i, k in enumerate(keys):
        if k not in targets or not draw(st.integers(0, 7)):  # some rows not in the target
            continue
        stored = {c: rows[c][i] for c in COLUMNS}
        for c in COLUMNS:
            if draw(st.integers(0, 3)) == 0:  # tampered: another value, a NULL, a spelling
                stored[c] = draw(VALUES)
        if draw(st.booleans()) and len(stored) > 1:
            stored.pop(COLUMNS[-1])  # a column the fetch did not return
        actual[targets[k]] = stored
    return part, targets, actual


@settings(max_examples=300, deadline=None)
@given(blocks())
def test_the_column_path_finds_what_value_by_value_finds(block):
    part, targets, actual = block
    assert _sample_block(part, COLUMNS, targets, actual) == _value_by_value(part, targets, actual)


def test_a_tampered_block_is_reported_and_equal_values_skip_values_equal(monkeypatch):
    keys = [f"s{i}" for i in range(1000)]
    part = pd.DataFrame(
        {c: pd.array([f"{c}{i}" for i in range(1000)], dtype=TEXT) for c in COLUMNS},
        index=pd.Index(keys, dtype=object),
    )
    targets = {k: f"t{i}" for i, k in enumerate(keys)}
    actual = {f"t{i}": {c: f"{c}{i}" for c in COLUMNS} for i in range(1000)}
    actual["t7"]["amount"] = "tampered"
    actual["t9"]["name"] = None
    del actual["t500"]
    calls = []
    real = checks.values_equal
    monkeypatch.setattr(checks, "values_equal", lambda a, b: calls.append(1) or real(a, b))
    found = _sample_block(part, COLUMNS, targets, actual)
    assert [(d["key"], d["field"], d["actual"]) for d in found] == [
        ("t7", "amount", "tampered"),
        ("t9", "name", None),
        ("t500", "*", None),
    ]
    assert found == _value_by_value(part, targets, actual)
    assert len(calls) == 2  # only the two values that differ as texts


def test_non_text_columns_and_a_shared_key_are_compared_value_by_value():
    part = pd.DataFrame(
        {"name": ["a", "b"], "amount": [1, 2], "created": ["x", "y"]},
        index=pd.Index(["s0", "s1"], dtype=object),
    )
    targets = {"s0": "t0", "s1": "t1"}
    actual = {"t0": {"name": "a", "amount": "1.0", "created": "x"}, "t1": {"name": "b"}}
    assert _sample_block(part, COLUMNS, targets, actual) == _value_by_value(part, targets, actual)
    text = part.astype(TEXT)
    shared = {"s0": "t0", "s1": "t0"}  # two sampled rows under one target key
    assert _sample_block(text, COLUMNS, shared, actual) == _value_by_value(text, shared, actual)
