"""A cursor wrapper that keeps the text of each statement it runs (no behaviour changed): for
tests that count what a piece of code asks the database."""

from __future__ import annotations

from typing import Any


class Recorder:
    """Wraps a psycopg2 cursor; each statement's text (composed SQL rendered) goes to
    ``texts`` before it runs; everything else is the cursor's own."""

    def __init__(self, cur: Any, texts: list[str]) -> None:
        self.cur, self.texts = cur, texts

    def execute(self, query: Any, params: Any = None) -> Any:
        self.texts.append(query if isinstance(query, str) else query.as_string(self.cur))
        return self.cur.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cur, name)
