"""The report's failed-key set (validation.reconciliation.expected.KeySet) answers exactly as a
Python set: a row the run failed is left out of the expected side, every other row stays in."""

from hypothesis import given, settings
from hypothesis import strategies as st

from validation.reconciliation.expected import KeySet

HOSTILE = ["", "\x00", "a", "a\x00", "a\x01", "a\x01\x01", "\x01", "ä", "a ", " a", "A", "10",
           "010", "1e3", "\U0001f600", "\ud800", "x" * 300]  # fmt: skip


def test_hostile_keys_are_told_apart_exactly():
    for cut in range(len(HOSTILE) + 1):
        stored, probe = HOSTILE[:cut], HOSTILE
        got = KeySet(stored).contains(probe)
        assert got.tolist() == [k in set(stored) for k in probe], stored


def test_a_key_longer_than_every_stored_key_is_not_in_the_set():
    keys = KeySet(["abc", "abd"])
    assert keys.contains(["abcd", "abc", "ab", "abdx"]).tolist() == [False, True, False, False]


def test_an_empty_set_and_an_empty_probe():
    assert KeySet([]).contains(["a", ""]).tolist() == [False, False]
    assert KeySet(["a"]).contains([]).tolist() == []
    assert len(KeySet(iter(["b", "a", "b"]))) == 3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=12), max_size=60),
    st.lists(st.text(max_size=14), max_size=60),
)
def test_membership_is_a_python_set(stored, others):
    probe = stored + others
    assert KeySet(stored).contains(probe).tolist() == [k in set(stored) for k in probe]


def test_blocks_join_into_one_sorted_set():
    KeySet._BLOCK, block = 7, KeySet._BLOCK
    try:
        stored = [str(i) * (i % 5 + 1) for i in range(100)]
        probe = stored + [s + "!" for s in stored] + ["", "0", "00"]
        assert KeySet(stored).contains(probe).tolist() == [k in set(stored) for k in probe]
    finally:
        KeySet._BLOCK = block


def test_a_probe_is_encoded_by_arrow_not_key_by_key(monkeypatch):
    """A chunk's keys (10,000 a chunk, 10 M at 10 M rows) are encoded in one Arrow pass:
    no per-key Python call (``_encode`` ran once per probed key before)."""
    import pandas as pd

    stored = [str(i) for i in range(0, 3000, 3)]
    keys = KeySet(stored)
    calls = []
    real = KeySet._encode
    monkeypatch.setattr(KeySet, "_encode", staticmethod(lambda k: calls.append(k) or real(k)))
    probe = pd.Series([str(i) for i in range(1000)], dtype=object)
    assert keys.contains(probe).tolist() == [int(k) % 3 == 0 for k in probe]
    assert calls == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=12), max_size=60),
    st.lists(st.text(max_size=14), max_size=60),
    st.sampled_from(["list", "object", "arrow", "index", "sliced"]),
)
def test_every_kind_of_probe_answers_as_a_python_set(stored, others, kind):
    """Lists, object and Arrow-backed Series, an Index and a sliced Arrow array answer alike
    (lone surrogates, which Arrow refuses, are probed key by key as before)."""
    import pandas as pd
    import pyarrow as pa

    probe = stored + others
    if kind == "object":
        probe = pd.Series(probe, dtype=object)
    elif kind == "index":
        probe = pd.Index(probe, dtype=object)
    elif kind in ("arrow", "sliced"):
        try:
            arr = pa.array(["pad"] + list(probe), pa.string())
        except (UnicodeEncodeError, pa.ArrowException):
            arr = None  # a lone surrogate: the list itself is probed
        if arr is not None:
            dtype = pd.ArrowDtype(pa.string())
            probe = pd.Series(arr.slice(1) if kind == "sliced" else arr[1:], dtype=dtype)
    want = [k in set(stored) for k in list(probe)]
    assert KeySet(stored).contains(probe).tolist() == want
