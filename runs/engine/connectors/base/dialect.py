"""The SQL dialect: what differs between the databases for the SQL written once in ``base/``.

Django keeps this in a backend's ``operations.py`` (quoting, casts) and ``features.py`` (what
the database can do); here one ``Dialect`` object per connector (``ops``) holds both. The
default is string SQL with ``?`` placeholders (SQLite); MySQL changes the placeholder, the
quoting and the text of a value; PostgreSQL composes psycopg2 ``sql`` objects instead.

A template is ``str.format`` text whose named fields are parts the dialect made (``quote``,
``table``, ``text``, ``sql``, ``join``) and two it fills in itself: ``{P}`` (a bound
parameter's placeholder) and ``{L}`` (the ledger tables' prefix: ``mp_ledger.batch`` or
``mp_ledger_batch``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .schema import ColumnInfo, TableInfo

# A WHERE clause (or other SQL fragment) and the arguments its placeholders take.
Clause = tuple[Any, list[Any]]


class Dialect:
    """String SQL with ``?`` placeholders and backtick quoting (SQLite's)."""

    param = "?"
    ledger = "mp_ledger_"
    # Rows a statement may bind at most per chunk of keys (SQLite: 999 variables).
    chunk = 400
    # Every ``batch_size``-th row of a window query (SQLite has no mod() without its math
    # functions compiled in).
    nth_row = "mp_rn % {P} = 0"
    # The ledger's rows of a batch, as one relation (PostgreSQL keeps inserted rows as arrays
    # in the batch record and shows both in a view).
    ledger_rows = "row"
    # Locking the rows a statement reads for the rest of the transaction (SQLite: the
    # write transaction locks the whole database already).
    for_update = ""
    # Repeated values are grouped by their text (SQLite: 1 and '1' in one column repeat).
    duplicates_by_text = True

    def quote(self, name: str) -> Any:
        """An identifier, quoted (backticks, embedded ones doubled). Pure."""
        return "`" + name.replace("`", "``") + "`"

    def table(self, info: TableInfo) -> Any:
        """The table's name as SQL. Pure."""
        return self.quote(info.name)

    def text(self, col: ColumnInfo, ref: str | None = None) -> Any:
        """The column's value (or the value named ``ref``) as text. Pure."""
        return f"CAST({self.quote(ref or col.name)} AS TEXT)"

    def bound(self, col: ColumnInfo) -> Any:
        """A key column as a key range's bound holds it (SQLite: as stored, so the bound
        compares under the column's affinity). Pure."""
        return self.quote(col.name)

    def sql(self, template: str, **parts: Any) -> Any:
        """``template`` with its named parts, ``{P}`` and ``{L}`` filled in. Pure."""
        return template.format(P=self.param, L=self.ledger, **parts)

    def join(self, parts: Iterable[Any], sep: str = ", ") -> Any:
        """SQL parts joined by ``sep``. Pure."""
        return sep.join(parts)

    def in_keys(
        self, template: str, args: list[Any], keys: list[str], **parts: Any
    ) -> list[Clause]:
        """``template`` whose ``{keys}`` tests membership in ``keys`` (text), with ``args``
        bound before the keys: one query per chunk of keys (none without keys). Pure."""
        out = []
        for start in range(0, len(keys), self.chunk):
            chunk = keys[start : start + self.chunk]
            test = "IN (" + ", ".join(self.param for _ in chunk) + ")"
            out.append((self.sql(template, keys=test, **parts), [*args, *chunk]))
        return out

    def where(self, parts: list[Any]) -> Any:
        """``WHERE`` and the parts joined by ``AND``; nothing without parts. Pure."""
        return self.sql("WHERE {p}", p=self.join(parts, " AND ")) if parts else self.sql("")


def fetch(handle: Any, query: Any, args: list[Any]) -> list[tuple]:
    """Rows of one query on a transaction's handle (a psycopg2 cursor or an sqlite3
    connection, whose ``execute`` returns the cursor; psycopg2's returns None)."""
    cur = handle.execute(query, args)
    return (cur if cur is not None else handle).fetchall()


def affected(handle: Any, query: Any, args: list[Any]) -> int:
    """Rows one statement on a transaction's handle changed."""
    cur = handle.execute(query, args)
    return (cur if cur is not None else handle).rowcount
