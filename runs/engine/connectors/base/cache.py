"""Shared connector plumbing: the cached schema, and text extraction through Arrow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from .schema import SchemaInfo, TableInfo


class SchemaCache:
    """Connector mixin: tables from the last ``introspect()``, re-read on an unknown name."""

    _schema: SchemaInfo | None = None

    def introspect(self) -> SchemaInfo:  # pragma: no cover - every connector defines it
        raise NotImplementedError

    def live_table(self, name: str) -> TableInfo | None:
        """The table as it is now (the schema re-read and the cache refreshed); None when it
        does not exist. Read-only."""
        return self.introspect().tables.get(name)

    def _table(self, name: str) -> TableInfo:
        if self._schema is None or name not in self._schema.tables:
            self.introspect()
        assert self._schema is not None
        return self._schema.table(name)


class ArrowTextSource(SchemaCache):
    """Connector mixin for sources whose ``extract`` can return Arrow-backed strings."""

    def extract_text(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """``extract(..., arrow=True)``: Arrow-backed string columns (missing values are pd.NA),
        what a batch feeds the transform, which works on Arrow strings anyway. Read-only."""
        return self.extract(*args, **kwargs, arrow=True)  # type: ignore[attr-defined]
