"""What target calls return: a batch's load result, a rollback's result, a table checksum."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class LoadResult:
    """Outcome of one load_batch; ``already_done`` when the batch was committed before."""

    inserted: int = 0
    updated: int = 0
    already_done: bool = False
    result_meta: dict[str, Any] = field(default_factory=dict)
    unchanged: int = 0  # skip_unchanged: rows already identical in the target, not written
    coerced: int = 0  # rows the target stored otherwise than meant: undone, now failures

    @property
    def loaded(self) -> int:
        """Rows the target now holds as transformed: inserted + updated + unchanged."""
        return self.inserted + self.updated + self.unchanged


@dataclass(frozen=True)
class RollbackResult:
    """What rollback_batch undid; all zero when the batch was not (or no longer) recorded."""

    batch_id: str
    deleted: int = 0
    restored: int = 0
    keymap_deleted: int = 0
    ledger_rows_deleted: int = 0
    found: bool = False  # the batch was recorded (and is now undone)


@dataclass(frozen=True)
class TableChecksum:
    """Order-independent digest of a table's rows (text form) plus the row count."""

    rows: int
    digest: str
