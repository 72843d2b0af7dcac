"""Source deletes on every SQL target, written once (``SqlDeletes.delete_batch``): the policy
check, one locked transaction, idempotence, the key-map entries of the keys, the rows kept in
the ``deleted`` ledger (before-image and key-map entry each), the counts and the batch record.
What each database does its own way (before-images, deleting, marking, undoing) are hooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runs.engine.deletes import DeleteResult, check_policy

from .dialect import Dialect, fetch
from .ledger import batch_record, insert_row
from .results import LoadResult

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec

    from .schema import ColumnInfo, TableInfo

DELETED_COLUMNS = (
    "run_id",
    "batch_id",
    "entity",
    "target_table",
    "target_key",
    "action",
    "before_image",
    "namespace",
    "source_key",
    "keymap_run_id",
    "keymap_batch_id",
)


class SqlDeletes:
    """``delete_batch`` on a SQL target. Hooks: ``_ensure_deleted`` (the ``deleted`` ledger
    table, inside the batch's transaction), ``_images`` (before-images by target key, rows
    locked), ``_delete_rows`` and ``_mark_rows`` (the target keys done); from the ledger:
    ``_batch_tx``, ``_stored_result``, ``_keymap_pending``."""

    ops: Dialect
    batch_namespace = False  # the batch record has a namespace column
    _table: Any
    ensure_ledger: Any
    _batch_tx: Any
    _stored_result: Any
    _keymap_pending: Any

    def delete_batch(
        self,
        *,
        entity: EntitySpec,
        source_keys: Sequence[str],
        run_id: str,
        batch_id: str,
        namespace: str,
    ) -> DeleteResult:
        """``DeleteTarget.delete_batch`` (runs.engine.deletes); a batch that changed nothing
        records nothing. Raises EngineError (policy), SchemaError, TransientError."""
        check_policy(entity)
        info = self._table(entity.target_table)
        tk = info.column(entity.target_key)
        mark = info.column(entity.delete_mark_column) if entity.delete_policy == "mark" else None
        self.ensure_ledger()
        self._keymap_pending(namespace, entity.name)
        ops, keys = self.ops, [str(k) for k in source_keys]
        where = "FROM {L}keymap WHERE namespace = {P} AND entity = {P} AND source_key {keys}"
        with self._batch_tx(run_id, batch_id) as handle:
            self._ensure_deleted(handle)
            stored = self._stored_result(handle, run_id, batch_id)
            if stored is not None:
                return stored_delete(stored)
            pairs: dict[str, tuple] = {}  # target key -> key-map row
            select = "SELECT source_key, target_key, run_id, batch_id " + where + ops.for_update
            for query, args in ops.in_keys(select, [namespace, entity.name], keys):
                pairs.update((r[1], tuple(r)) for r in fetch(handle, query, args))
            if not pairs:
                return DeleteResult()
            images = self._images(handle, info, tk, list(pairs))
            if mark is None:
                done = self._delete_rows(handle, info, tk, list(images))
                mapped = [p[0] for p in pairs.values()]
                for query, args in ops.in_keys("DELETE " + where, [namespace, entity.name], mapped):
                    handle.execute(query, args)
            else:
                value = entity.delete_mark_value
                done = self._mark_rows(handle, info, tk, mark, value, list(images))
            rows = deleted_rows(
                run_id=run_id,
                batch_id=batch_id,
                entity=entity.name,
                table=info.name,
                namespace=namespace,
                marked=mark is not None,
                done=done,
                images=images,
                pairs=pairs,
            )
            if not rows:
                return DeleteResult()
            handle.executemany(insert_row(ops, "deleted", dict.fromkeys(DELETED_COLUMNS))[0], rows)
            counts = delete_counts(done, marked=mark is not None)
            record = batch_record(
                run_id=run_id,
                batch_id=batch_id,
                entity=entity.name,
                table=info.name,
                key_column=tk.name,
                meta=counts,
                load=counts,
            )
            if self.batch_namespace:
                record["namespace"] = namespace
            handle.execute(*insert_row(ops, "batch", record))
        return DeleteResult(**counts)

    def _ensure_deleted(self, handle: Any) -> None:
        raise NotImplementedError

    def _images(self, handle: Any, info: TableInfo, tk: ColumnInfo, keys: list) -> dict:
        raise NotImplementedError

    def _delete_rows(self, handle: Any, info: TableInfo, tk: ColumnInfo, keys: list) -> list:
        raise NotImplementedError

    def _mark_rows(self, handle: Any, info: TableInfo, tk: ColumnInfo, *args: Any) -> list:
        """The keys marked; ``args``: the mark column, its value, the keys."""
        raise NotImplementedError


def stored_delete(stored: LoadResult) -> DeleteResult:
    """The result of a delete batch committed before (its stored counts, ``already_done``)."""
    meta = stored.result_meta
    return DeleteResult(
        deleted=int(meta.get("deleted", 0)),
        marked=int(meta.get("marked", 0)),
        already_done=True,
    )


def deleted_rows(
    *,
    run_id: str,
    batch_id: str,
    entity: str,
    table: str,
    namespace: str,
    marked: bool,
    done: Sequence[str],
    images: Mapping[str, str],
    pairs: Mapping[str, Sequence[Any]],
) -> list[tuple]:
    """The ``deleted`` ledger rows of a batch: one per target row deleted or marked (with its
    before-image and key-map entry), and for deletes each key-map entry whose target row was
    already gone (so a rollback restores it too). ``pairs``: target key -> key-map row."""
    action = "mark" if marked else "delete"
    rows = [
        (run_id, batch_id, entity, table, k, action, images[k], namespace, *_keymap(pairs[k]))
        for k in done
    ]
    if not marked:
        rows += [
            (run_id, batch_id, entity, table, k, action, "{}", namespace, *_keymap(p))
            for k, p in pairs.items()
            if k not in images
        ]
    return rows


def _keymap(pair: Sequence[Any]) -> tuple[Any, Any, Any]:
    """(source key, key-map run id, key-map batch id) of a key-map row."""
    return pair[0], pair[2], pair[3]


def delete_counts(done: Sequence[str], *, marked: bool) -> dict[str, int]:
    """The batch's counts as its ledger record keeps them."""
    return {"deleted": 0, "marked": len(done)} if marked else {"deleted": len(done), "marked": 0}
