"""User regular expressions on RE2 (google-re2): linear time, so no pattern can hang a worker.

RE2 has no lookarounds and no back-references; such a pattern is refused with a message that
names the construct. Every regex a user types (rule steps, format checks, preview, dry run)
goes through ``regex_compile``. Pure; no Django.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

import re2

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

MAX_PATTERN_CHARS = 2_000
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.max_mem = 8 << 20  # a compiled program bigger than 8 MB is refused

_UNSUPPORTED = {
    "(?=": "lookahead “(?=…)”",
    "(?!": "negative lookahead “(?!…)”",
    "(?<=": "lookbehind “(?<=…)”",
    "(?<!": "negative lookbehind “(?<!…)”",
    "(?>": "atomic group “(?>…)”",
    "(?P=": "named back-reference “(?P=…)”",
}


class RegexRefused(ValueError):
    """The pattern is not valid RE2 (or too large); the message says which construct and why."""


def _explain(pattern: str, exc: Exception) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    for token, name in _UNSUPPORTED.items():
        if token in pattern:
            return (
                f"{name} is not supported: patterns run on RE2, which guarantees linear "
                "time and has no lookarounds or back-references"
            )
    if "invalid escape sequence: \\" in text and text[-1:].isdigit():
        return (
            "back-references (\\1, \\2, …) are not supported: patterns run on RE2, which "
            "guarantees linear time"
        )
    if "pattern too large" in text:
        return "the pattern is too large (its compiled program passes 8 MB)"
    return f"invalid regular expression: {text}"


@lru_cache(maxsize=512)
def regex_compile(pattern: str) -> re2._Regexp:
    """The compiled RE2 pattern (cached); raises RegexRefused with a readable reason."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexRefused(f"the pattern is longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise RegexRefused(_explain(pattern, exc)) from None


def regex_fullmatch(values: Iterable[str | None], pattern: str) -> np.ndarray:
    """Bool per value: the whole value matches (None -> False). Raises RegexRefused."""
    import numpy as np  # where used: the web app and the Celery parent stay numpy-free

    rx = regex_compile(pattern)
    return np.fromiter((v is not None and rx.fullmatch(v) is not None for v in values), dtype=bool)


def regex_search(values: Iterable[str | None], pattern: str) -> np.ndarray:
    """Bool per value: the pattern occurs in the value (None -> False). Raises RegexRefused."""
    import numpy as np

    rx = regex_compile(pattern)
    return np.fromiter((v is not None and rx.search(v) is not None for v in values), dtype=bool)


def regex_match_column(values: pa.Array, pattern: str, *, full: bool) -> np.ndarray:
    """Bool per value of an Arrow string array, the whole column at once on Arrow's RE2 (the
    same engine and defaults as ``regex_fullmatch`` / ``regex_search``, no Python call per
    value): ``full`` -> the whole value matches, else the pattern occurs; null -> False.
    Raises RegexRefused exactly as ``regex_compile``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    regex_compile(pattern)  # the same refusals and size limit as the per-value path
    # \A and \z: text anchors whatever the pattern's flags ((?m) changes only ^ and $);
    # the group keeps a top-level alternation inside the anchors
    anchored = f"\\A(?:{pattern})\\z" if full else pattern
    try:
        hit = pc.match_substring_regex(values, anchored)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not seen; kept safe
        search = regex_fullmatch if full else regex_search
        return search(values.to_pylist(), pattern)
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def regex_sub(values: Iterable[str | None], pattern: str, replacement: str) -> list[str | None]:
    """Every match replaced (``\\1`` / ``\\g<name>`` refer to groups); None stays None."""
    rx = regex_compile(pattern)
    return [None if v is None else rx.sub(replacement, v) for v in values]
