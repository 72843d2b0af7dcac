"""A sample_compare rule's expected rows spilled to disk (validation.reconciliation.sample):
read back exactly as added, in order, block by block; memory holds one block, however large
the sample (issue 20: a 10 M run's 5 % sample held ~400 MB of the report worker)."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.rules import TEXT
from validation.reconciliation import sample
from validation.reconciliation.sample import SampleRows

KEYS = st.text(max_size=6)
VALUES = st.one_of(st.none(), st.text(alphabet=st.characters(exclude_categories=["Cs"])))


def _frame(rows: list[tuple[str, str | None, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame({"name": [r[1] for r in rows], "city": [r[2] for r in rows]}, dtype=TEXT)
    frame.index = pd.Index([r[0] for r in rows], dtype=object)
    return frame


def _texts(frame: pd.DataFrame) -> list[tuple]:
    return [
        (k, *(None if pd.isna(v) else v for v in row))
        for k, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.tuples(KEYS, VALUES, VALUES), max_size=9), max_size=6),
    st.integers(1, 7),
    st.integers(1, 5),
)
def test_rows_come_back_as_added_in_blocks(chunks, spill, size):
    original = sample.SPILL_ROWS
    sample.SPILL_ROWS = spill
    try:
        rows = SampleRows()
        for chunk in chunks:
            rows.add(_frame(chunk))
        blocks = list(rows.blocks(size))
        again = list(rows.blocks(size))  # a second rule with the same sample reads it again
        keys = list(rows.keys(size))  # the keys alone, block for block (looked up first)
        rows.close()
    finally:
        sample.SPILL_ROWS = original
    added = [r for chunk in chunks for r in chunk]
    assert len(rows) == len(added)
    assert [t for b in blocks for t in _texts(b)] == [(k, a, b) for k, a, b in added]
    assert [len(b) for b in blocks[:-1]] == [size] * (len(blocks) - 1)
    assert [_texts(b) for b in again] == [_texts(b) for b in blocks]
    assert keys == [list(b.index) for b in blocks]


def test_memory_holds_one_block_however_large_the_sample(monkeypatch):
    monkeypatch.setattr(sample, "SPILL_ROWS", 100)
    rows = SampleRows()
    for start in range(0, 10_000, 25):
        chunk = [(str(k), f"name {k}", None) for k in range(start, start + 25)]
        rows.add(_frame(chunk))
    assert len(rows) == 10_000
    assert rows.peak_held < 100 + 25  # never more than a block and the chunk that filled it
    assert max(len(b) for b in rows.blocks(7)) == 7
    assert sum(len(b) for b in rows.blocks(1_000)) == 10_000
    rows.close()
    assert list(rows.blocks(10)) == []


def test_a_key_arrow_would_refuse_comes_back_exactly():
    rows = SampleRows()
    rows.add(_frame([("\ud800x", "a", None), ("", None, "b")]))
    assert _texts(rows.frame()) == [("\ud800x", "a", None), ("", None, "b")]
    rows.close()
