"""What every SQL target does alike when it applies a delete policy: the rows it keeps in its
``deleted`` ledger (before-image and key-map entry each), the counts, a stored batch's result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runs.engine.deletes import DeleteResult

from .results import LoadResult


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
