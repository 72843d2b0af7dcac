"""A sample's rows picked chunk by chunk (``_pick``) are the rows a pick over all the rows at
once gives: the n smallest seeded hashes (ties: the first row) and, for a pct sample, every
row whose hash is under its cut — whatever the chunking."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.engine.rules import TEXT
from validation.reconciliation.expected import SampleSpec, _pick
from validation.reconciliation.sample import SampleRows


def _frame(keys: list[str]) -> pd.DataFrame:
    values = pd.array([f"v{k}" for k in keys], dtype=TEXT)
    return pd.DataFrame({"a": values, "b": values}, index=pd.Index(keys, dtype=object))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(max_size=3), unique=True, max_size=60),
    st.lists(st.integers(1, 9), min_size=1, max_size=8),
    st.integers(1, 6),
    st.sampled_from([0.0, 5.0, 40.0, 100.0]),
    st.integers(0, 3),
)
def test_pick_by_chunks_is_the_pick_over_all_rows(keys, cuts, n, pct, seed):
    whole = _frame(keys)
    chunks, at = [], 0
    for size in cuts * len(keys):
        if at >= len(keys):
            break
        chunks.append(whole.iloc[at : at + size])
        at += size
    for spec in (SampleSpec(pct=None, n=n, seed=seed), SampleSpec(pct=pct, n=None, seed=seed)):
        smallest: dict = {}
        picked = None if spec.n else SampleRows()
        for chunk in chunks:
            _pick(spec, chunk, smallest, picked, ("k",))
        hashes = spec.hashes(whole.index)
        want = whole.assign(mp_hash=hashes).nsmallest(spec.n or 1, "mp_hash")
        got = smallest.get(("k",), want.iloc[:0])
        assert list(got.index) == list(want.index)
        assert got["mp_hash"].tolist() == want["mp_hash"].tolist()
        if picked is not None:
            cut = min(int(pct / 100 * 2**64), 2**64 - 1)
            assert list(picked.frame().index) == [k for k, h in zip(keys, hashes) if h <= cut]
            picked.close()
