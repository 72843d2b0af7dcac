"""Title case that keeps what is already right: legal-form and country tokens (LLC, GmbH,
USA…) and English contractions (it's).

The rule, word by word (a word is a run of non-whitespace; ASCII punctuation around it is
ignored when it is matched):

1. a word in ``KNOWN_TOKENS`` (any case) is written as listed: "acme llc" → "Acme LLC";
2. any other word gets Python's ``str.title`` (first letter of each letter run upper, the rest
   lower), except that ``'s ’s 't 'd 'm 'll 're 've`` after a letter stay lower: "MCDONALD'S"
   → "Mcdonald's", "DON'T" → "Don't", "O'NEIL" → "O'Neil".

Other all-caps words are not kept: legacy data writes surnames in capitals ("Ann LEE" →
"Ann Lee"), and a short capitalised word tells nothing about whether it is an acronym.
"""

from __future__ import annotations

import re
import string

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .core import _arrow, _series, as_text

KNOWN_TOKENS = {
    t.upper(): t
    for t in (
        "LLC", "LLP", "LTD", "PLC", "GmbH", "AG", "KG", "NV", "BV", "SARL", "USA", "UK", "EU",
        "UAE", "IBM",
    )
}  # fmt: skip
CONTRACTIONS = frozenset({"s", "t", "d", "m", "ll", "re", "ve"})
_PUNCT = string.punctuation
_WORDS = re.compile(r"(\s+)")
_APOSTROPHES = "'’"
# Rows the word rules may change (a superset, matched by Arrow): the others get Arrow's title.
_CANDIDATE = (
    r"(?i:(?:^|[^a-z])(?:" + "|".join(sorted(KNOWN_TOKENS)) + r")(?:[^a-z]|$))|['’]|[^\x00-\x7f]"
)


def _contractions(word: str) -> str:
    """Lower a contraction's letters after an apostrophe that follows a letter."""
    out, i = list(word), 0
    while i < len(word):
        if word[i] in _APOSTROPHES and i and word[i - 1].isalpha():
            j = i + 1
            while j < len(word) and word[j].isalpha():
                j += 1
            if word[i + 1 : j].lower() in CONTRACTIONS:
                out[i + 1 : j] = word[i + 1 : j].lower()
            i = j
        else:
            i += 1
    return "".join(out)


def _title_word(word: str) -> str:
    core = word.strip(_PUNCT)
    if core and core.isascii() and core.isalpha():
        known = KNOWN_TOKENS.get(core.upper())
        if known is not None:
            start = len(word) - len(word.lstrip(_PUNCT))
            return word[:start] + known + word[start + len(core) :]
    return _contractions(word.title())


def title_value(value: str) -> str:
    """One value in title case by the rules of this module (pure)."""
    parts = _WORDS.split(value)
    return "".join(p if i % 2 else _title_word(p) for i, p in enumerate(parts))


def title_series(values: pd.Series) -> pd.Series:
    """Title case of every value (null stays null), as ``title_value`` gives it: Arrow's title
    for plain ASCII values no word rule can change, Arrow kernels for plain ASCII values with
    a known token or an apostrophe (``_arrow_tokens``), ``title_value`` for the few others
    (``python_rows``: non-ASCII, other whitespace)."""
    text = as_text(values)
    arr = _arrow(text)
    out = pc.utf8_title(arr)  # what pandas' str.title calls
    candidate = pc.match_substring_regex(arr, _CANDIDATE).fill_null(False)
    at = np.flatnonzero(candidate.to_numpy(zero_copy_only=False))
    if not len(at):
        return _series(out, text.index)
    picked = pc.filter(arr, candidate)
    slow = pc.match_substring_regex(picked, _PYTHON_ONLY).to_numpy(zero_copy_only=False)
    # the word rules' rows put back by Arrow (replace_with_mask fills in row order)
    if not slow.all():
        fast = pc.filter(picked, pa.array(~slow))
        out = pc.replace_with_mask(out, _mask(len(arr), at[~slow]), _arrow_tokens(fast))
    if slow.any():
        python = [title_value(v) for v in picked.filter(pa.array(slow)).to_pylist()]
        out = pc.replace_with_mask(out, _mask(len(arr), at[slow]), pa.array(python, out.type))
    return _series(out, text.index)


def _mask(size: int, positions: np.ndarray) -> pa.Array:
    mask = np.zeros(size, dtype=bool)
    mask[positions] = True
    return pa.array(mask)


# Values Arrow's kernels are not trusted with: a non-ASCII character (Unicode title case),
# whitespace other than the space (words are split on it), an apostrophe after a digit or an
# underscore, or a letter run after an apostrophe ended by one (RE2's word boundary, with
# which contractions are matched, counts them as word characters; str.isalpha does not).
_PYTHON_ONLY = r"[^\x00-\x7f]|[\t\n\x0b\x0c\r\x1c-\x1f]|[0-9_]'|'[A-Za-z]+[0-9_]"
# A contraction as str.title leaves it ('T, 'Ll) after a letter, before a non-letter
_CONTRACTIONS = [(rf"\b'{c.title()}\b", f"'{c}") for c in sorted(CONTRACTIONS)]
_TOKEN_WORD = (
    r"^(?P<lead>[[:punct:]]*)(?P<core>(?i:" + "|".join(sorted(KNOWN_TOKENS)) + r"))"
    r"(?P<tail>[[:punct:]]*)$"
)
_TOKENS = pa.array(list(KNOWN_TOKENS), pa.large_string())  # upper-case forms
_FORMS = pa.array(list(KNOWN_TOKENS.values()), pa.large_string())  # as listed
_NONE, _SPACE = pa.scalar("", pa.large_string()), pa.scalar(" ", pa.large_string())


def python_rows(values: pd.Series) -> np.ndarray:
    """Which values ``title_series`` gives to ``title_value`` (Python, one at a time)."""
    arr = _arrow(as_text(values))
    candidate = pc.match_substring_regex(arr, _CANDIDATE).fill_null(False)
    slow = pc.match_substring_regex(arr, _PYTHON_ONLY).fill_null(False)
    return pc.and_(candidate, slow).to_numpy(zero_copy_only=False)


def _arrow_tokens(arr: pa.Array) -> pa.Array:
    """``title_value`` of plain ASCII values whose words are separated by spaces only (and no
    apostrophe RE2 would judge differently, ``_PYTHON_ONLY``): each word titled (as
    ``str.title`` does for ASCII), a contraction after a letter lowered again, a word that is a
    known token between ASCII punctuation written as listed (``_title_word``'s rules)."""
    titled = pc.utf8_title(arr)
    quoted = pc.match_substring(titled, "'")
    if pc.any(quoted).as_py():
        some = pc.filter(titled, quoted)
        for pattern, lowered in _CONTRACTIONS:
            some = pc.replace_substring_regex(some, pattern, lowered)
        titled = pc.replace_with_mask(titled, quoted, some)
    words = pc.split_pattern(titled, " ")  # joined again by one space: exact
    flat = words.values
    token = pc.match_substring_regex(flat, _TOKEN_WORD)
    parts = pc.extract_regex(pc.filter(flat, token), _TOKEN_WORD)  # the token words only
    form = pc.take(_FORMS, pc.index_in(pc.utf8_upper(parts.field("core")), value_set=_TOKENS))
    fixed = pc.binary_join_element_wise(parts.field("lead"), form, parts.field("tail"), _NONE)
    flat = pc.replace_with_mask(flat, token, fixed)
    return pc.binary_join(pa.LargeListArray.from_arrays(words.offsets, flat), _SPACE)
