"""CSV for spreadsheets: cells that a spreadsheet would run as a formula are neutralised.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
apostrophe (OWASP "CSV injection"); plain numbers such as ``-5`` or ``+1.5`` stay as they are.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+([.,][0-9]+)?([eE][+-]?[0-9]+)?")


def csv_cell(value: Any) -> Any:
    """The value, with a leading apostrophe when a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_cell_restore(value: str) -> str:
    """Undo ``csv_cell`` on a value read back from our own export (lookup import)."""
    if value.startswith("'") and value[1:].startswith(TRIGGERS):
        return value[1:]
    return value


class SafeWriter:
    """``csv.writer`` whose rows are neutralised cell by cell."""

    def __init__(self, target: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(target, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        """Write one row (returns what the underlying writer returns)."""
        return self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write every row."""
        for row in rows:
            self.writerow(row)


def csv_writer(target: Any, **kwargs: Any) -> SafeWriter:
    """A formula-safe ``csv.writer`` over ``target``."""
    return SafeWriter(target, **kwargs)
