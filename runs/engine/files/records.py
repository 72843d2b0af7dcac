"""What a file reader hands the stager: its columns (which may grow while JSON/XML records are
read) and its rows, one at a time, so no file is ever held whole in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runs.engine.errors import StagingError

ROW_COLUMN = "_row"
MAX_RECORD_CHARS = 16 << 20  # one JSON record / one text line; longer is refused

Row = list[str | None]


class Columns:
    """Column names in order of first appearance, each checked as it arrives: stripped, not
    empty, not the reserved ``_row``, not a (case-insensitive) duplicate."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.names: list[str] = []
        self._by_key: dict[Any, int] = {}
        self._folded: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.names)

    def index(self, key: Any) -> int:
        """Position of ``key`` (a header cell or record key), adding it when new."""
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = self._add(key)
        return found

    def _add(self, raw: Any) -> int:
        position = len(self.names) + 1
        name = "" if raw is None else str(raw).strip()
        if not name:
            raise StagingError(f"{self.label} {position} has an empty name", column=str(position))
        folded = name.casefold()
        if folded == ROW_COLUMN:
            raise StagingError(
                f"{self.label} {position} is named {name!r}, which is reserved for the row number",
                column=name,
            )
        if folded in self._folded:
            raise StagingError(
                f"{self.label} {position} {name!r} duplicates column {self._folded[folded]} "
                "(names are compared ignoring case)",
                column=name,
            )
        self._folded[folded] = position
        self.names.append(name)
        return position - 1

    def row(self, record: dict[Any, str | None]) -> Row:
        """A record (key -> text) as a row as wide as the columns known so far."""
        positions = [(self.index(key), value) for key, value in record.items()]
        row: Row = [None] * len(self.names)
        for position, value in positions:
            row[position] = value
        return row


@dataclass
class Stream:
    """An open file being read: format facts, columns, rows (read lazily), bytes consumed."""

    format: str
    encoding: str | None
    delimiter: str | None
    columns: Columns
    rows: Iterator[Row]
    bytes_read: Callable[[], int]
    close: Callable[[], None] = field(default=lambda: None)
