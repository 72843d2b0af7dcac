"""The target role written once for every SQL target (the ``Loader`` protocol's methods): the
load-stage checks, and one batch's transaction (idempotence, counts, coerced rows) around the
two things each database does its own way: writing and reading the rows back
(``_write_rows``), and recording the batch in its ledger (``_record_batch``)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .coerced import CoercedFailure, with_coerced
from .frames import load_columns
from .ledger import batch_record, load_counts
from .results import LoadResult
from .validation import validate_frame

if TYPE_CHECKING:
    import pandas as pd

    from runs.engine.snapshot import EntitySpec
    from runs.engine.transform import FieldError
    from runs.engine.unchanged import RowState

from .schema import ColumnInfo, TableInfo


class Load(NamedTuple):
    """What one batch writes: the table, its columns written, the target key, and the
    upsert's conflict column (None: a plain insert)."""

    info: TableInfo
    cols: list[ColumnInfo]
    key: ColumnInfo
    upsert_on: ColumnInfo | None


@dataclass(frozen=True)
class Written:
    """One batch as its ledger records it. ``rows``: (target key, inserted?, before-image JSON
    or None, row hash of the intended values, written?, row position[, row version]) per row
    kept, in input order; ``source_keys``: every row's source key, by position."""

    entity: EntitySpec
    info: TableInfo
    key: ColumnInfo
    run_id: str
    batch_id: str
    namespace: str
    rows: list[tuple]
    source_keys: Sequence[str]
    result: LoadResult
    row_state: RowState | None = None

    def record(self, meta: Any) -> dict[str, Any]:
        """The columns of its batch record every target keeps (``meta``: its result_meta)."""
        return batch_record(
            run_id=self.run_id,
            batch_id=self.batch_id,
            entity=self.entity.name,
            table=self.info.name,
            key_column=self.key.name,
            meta=meta,
            load=load_counts(self.result),
        )

    @property
    def row_source_keys(self) -> list[str]:
        """The source key of each row kept, in ``rows`` order."""
        return [str(self.source_keys[w[5]]) for w in self.rows]


class SqlTarget:
    """``Loader`` on a SQL database. Hooks: ``_batch_tx`` and ``_stored_result`` (ledger),
    ``_write_rows`` and ``_record_batch`` (target)."""

    _table: Any
    ensure_ledger: Any
    _batch_tx: Any  # (run_id, batch_id) -> a write transaction holding the batch's lock
    _stored_result: Any  # (handle, run_id, batch_id) -> the batch's LoadResult or None

    def validate_rows(
        self,
        table: str,
        frame: pd.DataFrame,
        source_keys: pd.Series | None = None,
        key_field: str = "source_key",
    ) -> dict[Hashable, list[FieldError]]:
        """``Loader.validate_rows``: one FieldError per refused column (and source key), by
        index. Read-only; SchemaError if the table or a column is unknown."""
        return validate_frame(self._table(table), frame, source_keys, key_field)

    def load_batch(
        self,
        *,
        entity: EntitySpec,
        rows: pd.DataFrame,
        source_keys: Sequence[str],
        run_id: str,
        batch_id: str,
        namespace: str,
        result_meta: dict[str, Any],
        skip_unchanged: bool = False,
        describe_coerced: CoercedFailure | None = None,
        row_state: RowState | None = None,
    ) -> LoadResult:
        """``Loader.load_batch``: rows, ledger, key map and batch record in ONE transaction.
        Idempotent (a batch recorded before returns its stored result).

        Every row is read back before the commit: a row the target stored otherwise than
        meant (a typmod, an affinity, a trigger) is undone and becomes a ``coerced_by_target``
        failure (``describe_coerced`` builds it), never a loaded row; the ledger's row hash is
        that of the intended values (runs.engine.canonical). ``skip_unchanged`` (upsert only):
        rows the target already holds alike are not written, only counted. ``row_state``
        (runs.engine.unchanged, where the target keeps it): stored with the batch record, its
        carried keys recorded and counted unchanged."""
        info = self._table(entity.target_table)
        cols, tk, ext = load_columns(info, entity, rows, source_keys)
        upsert_on = ext if entity.load_mode == "upsert" else None
        self.ensure_ledger()
        with self._batch_tx(run_id, batch_id) as handle:
            stored = self._stored_result(handle, run_id, batch_id)
            if stored is not None:
                return stored
            skip = skip_unchanged and upsert_on is not None
            load = Load(info, cols, tk, upsert_on)
            written, coerced = self._write_rows(handle, load, rows, skip)
            result_meta = with_coerced(result_meta, coerced, rows, source_keys, describe_coerced)
            carried = len(row_state.carried) if row_state is not None else 0
            inserted = sum(1 for w in written if w[1])
            changed = sum(1 for w in written if w[4])
            result = LoadResult(
                inserted=inserted,
                updated=changed - inserted,
                unchanged=len(written) - changed + carried,
                result_meta=result_meta,
                coerced=len(coerced),
            )
            batch = Written(
                entity,
                info,
                tk,
                run_id,
                batch_id,
                namespace,
                written,
                source_keys,
                result,
                row_state,
            )
            self._record_batch(handle, batch)
        return result

    def _write_rows(self, handle: Any, load: Load, rows: pd.DataFrame, skip: bool) -> tuple:
        """(written, coerced) of one batch's rows (``skip``: leave rows the target holds alike
        alone)."""
        raise NotImplementedError

    def _record_batch(self, handle: Any, batch: Written) -> None:
        raise NotImplementedError
