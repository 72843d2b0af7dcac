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

import pandas as pd
import pyarrow.compute as pc

from .core import _arrow, as_text

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
    """Title case of every value (null stays null): Arrow's for plain ASCII values the word
    rules cannot change, ``title_value`` for the rest. Vectorised but for those rows."""
    text = as_text(values)
    out = text.str.title()
    arr = _arrow(text)
    special = pc.match_substring_regex(arr, _CANDIDATE).fill_null(False)
    mask = special.to_numpy(zero_copy_only=False)
    if mask.any():
        out = out.copy()
        out[mask] = [title_value(v) for v in text[mask].tolist()]
    return out
