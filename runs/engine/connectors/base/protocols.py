"""The roles a connector plays, as protocols, one per role module of a connector package:
``Introspection``, ``Source``, ``Loader`` (the target role), ``Ledger`` (with rollback) and
``Checks``. ``Target`` is a loader with its ledger and checks; ``Connector`` is both sides."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from runs.engine.snapshot import EntitySpec
    from runs.engine.transform import FieldError
from .coerced import CoercedFailure
from .results import LoadResult, RollbackResult, TableChecksum
from .schema import ChangedSince, KeyRange, SchemaInfo, TableInfo


class Introspection(Protocol):
    """Reading a database's schema (every connector)."""

    def introspect(self) -> SchemaInfo: ...
    def live_table(self, name: str) -> TableInfo | None: ...
    def close(self) -> None: ...


class Source(Introspection, Protocol):
    """Read side of a connector: counts, key ranges, extraction, keys and duplicates.

    ``count``: exact row count of ``table`` (rows past the ``changed_since`` watermark when
    given). ``max_value``: highest value of ``column`` as text (a delta run's high-water mark).
    ``key_ranges``: keyset batches of ``batch_size`` rows covering every row once, ordered by
    ``key_cols``; the last upper bound open. ``extract``: the rows of one key range, ordered by
    key, as object columns of str/None. ``fetch_keys``: which of ``keys`` (source key text,
    ``|``-joined when composite) exist. ``duplicate_values``: (how many distinct non-null
    values of ``column`` repeat, the first ``limit`` of them as text, sorted), counted by the
    database. All read-only; SchemaError for an unknown table or column."""

    # fmt: off
    def count(self, table: str, *, changed_since: ChangedSince | None = None) -> int: ...
    def max_value(self, table: str, column: str) -> str | None: ...
    def key_ranges(
        self, table: str, key_cols: Sequence[str], batch_size: int, *,
        changed_since: ChangedSince | None = None,
    ) -> list[KeyRange]: ...
    def extract(
        self, table: str, columns: Sequence[str], key_cols: Sequence[str], key_range: KeyRange,
        *, changed_since: ChangedSince | None = None,
    ) -> pd.DataFrame: ...
    def fetch_keys(self, table: str, key_cols: Sequence[str], keys: Sequence[str]) -> set[str]: ...
    def duplicate_values(
        self, table: str, column: str, limit: int = 20
    ) -> tuple[int, list[str]]: ...
    # fmt: on


class Loader(Introspection, Protocol):
    """The target role: rows a table would refuse, and one batch written with its ledger.

    ``validate_rows``: the rows of ``frame`` the table would refuse (or whose
    ``source_keys``, by the frame's labels, its ledger could not keep: a character the
    database's encoding cannot hold) -> their load-stage FieldErrors, by index (read-only).
    ``load_batch``: write one batch (``rows``, with their ``source_keys``), its ledger, key
    map and batch record in ONE transaction; idempotent per (``run_id``, ``batch_id``): a
    batch recorded before returns its stored result."""

    # fmt: off
    def validate_rows(
        self, table: str, frame: pd.DataFrame, source_keys: pd.Series | None = None,
        key_field: str = "source_key",
    ) -> dict[Hashable, list[FieldError]]: ...
    def load_batch(
        self, *, entity: EntitySpec, rows: pd.DataFrame, source_keys: Sequence[str],
        run_id: str, batch_id: str, namespace: str, result_meta: dict[str, Any],
        skip_unchanged: bool = False, describe_coerced: CoercedFailure | None = None,
    ) -> LoadResult: ...
    # fmt: on


class Ledger(Protocol):
    """What a target remembers of each batch: its result, the key map, and how to undo it."""

    def ensure_ledger(self) -> None: ...
    def batch_result(self, run_id: str, batch_id: str) -> LoadResult | None: ...
    def keymap_lookup(
        self, namespace: str, entity: str, source_keys: Sequence[str]
    ) -> dict[str, str]: ...
    def keymap_resolved(
        self, namespace: str, entity: str, source_keys: Iterable[Sequence[str]]
    ) -> AbstractContextManager[Callable[[Sequence[str]], dict[str, str]]]: ...
    def rollback_batch(self, run_id: str, batch_id: str) -> RollbackResult: ...
    def ledger_batches(self, run_id: str) -> list[str]: ...
    def ledger_order(self, run_ids: Sequence[str]) -> list[tuple[str, str]]: ...


class Checks(Protocol):
    """The proof a target gives: table checksums and row hashes."""

    def table_checksum(
        self, table: str, key_cols: Sequence[str], *, like: str | None = None
    ) -> TableChecksum: ...
    def row_hashes(
        self, table: str, key_col: str, keys: Sequence[str], *, columns: Sequence[str] | None = None
    ) -> dict[str, str]: ...


class Target(Loader, Ledger, Checks, Protocol):
    """Write side of a connector (load, ledger and rollback, checks)."""


class Connector(Source, Target, Protocol):
    """A database connector is both a source and a target."""
