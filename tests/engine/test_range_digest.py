"""``range_digest``'s sorted heads by numpy equal the definition (the texts' first 32 hex
digits sorted as text, then decoded) for any hashes: the server's ``source_range_digest`` is
compared with it, so one differing byte would make an unchanged range look changed."""

from __future__ import annotations

import hashlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from runs.engine.unchanged import _sorted_heads, range_digest, range_digest_text


def _defined(hashes: list[str]) -> bytes:
    return bytes.fromhex("".join(sorted(h[:32] for h in hashes)))


_HEX = "0123456789abcdef"
# lower-case 64-digit hashes, with shared prefixes, zero bytes and repeats likely
_hash = st.text(alphabet="0f1a", min_size=64, max_size=64) | st.text(
    alphabet=_HEX, min_size=64, max_size=64
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_hash, max_size=60))
def test_the_fast_path_equals_the_definition(hashes):
    assert _sorted_heads(hashes) == _defined(hashes)
    digest = hashlib.sha256(_defined(hashes)).hexdigest()
    assert range_digest(hashes) == range_digest_text(len(hashes), digest)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=_HEX + "ABCDEF", min_size=64, max_size=64)
        | st.text(alphabet=_HEX, min_size=32, max_size=70),
        max_size=20,
    )
)
@example(["B" + "0" * 63, "a" + "0" * 63])  # text order 'B' < 'a', byte order 0xb > 0xa
def test_hashes_off_the_fast_path_keep_the_definition(hashes):
    """Upper case (text order is not byte order when cases mix), other lengths: sorted as
    text, as before."""
    assert _sorted_heads(hashes) == _defined(hashes)


def test_a_batch_of_real_hashes():
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20_000)]
    assert _sorted_heads(hashes) == _defined(hashes)
    assert _sorted_heads(hashes[::-1]) == _sorted_heads(hashes)
