"""Re-runs that skip unchanged rows before transforming them.

The target's ledger keeps, per source key a batch loaded (or found unchanged), the hash of the
SOURCE row (``source_hash``: hashing.row_hash of the extracted text of the columns the plan
reads, in ``batch.source_columns`` order) and of the rules that made it (``rules_hash``: the
entity's frozen spec, its lookups, the plan namespace and rules format), beside the hash of
the row meant to be written and the written row's version. A re-run computes the source
hashes (in SQL on PostgreSQL sources, ``source_row_hashes``; in Python from the extract
elsewhere), asks the target which keys still have the same source hash and rules and a target
row that still holds what was written (``Target.unchanged_rows``: one query per batch), and
transforms and loads only the others. Skipped keys are carried into the new batch record,
counted as loaded and unchanged. Keys whose earlier run FAILED them, with the same source hash
and rules, are not transformed either: the application copies their failed records into the
new run (``FailedLookup``; counted failed, so the accounting still balances).

A key range whose rows are all unchanged is settled without shipping a row: the source server
still reads and hashes every row of the range, but returns only their digest (``range_digest``:
the count and the sha256 of the rows' source hashes in sorted order, each covering the row's
key). When the latest
live batch record with that digest under these rules still finds every target row it answers
for as written (one query in the target) and all its failures are still open in the error
queue (``FailedBatchLookup``), the range is carried whole; else the per-row comparison above
decides, as before.

Only upsert entities without dedupe take this path: a row's output then depends on its own
source row and the rules alone (dedupe compares rows of one batch). A reference lookup reads
the parent's key map, which the source hash does not cover: the rules hash of such an entity
includes a fingerprint of each parent's key map (``parent_fingerprints``), so any parent key
added, removed or mapped elsewhere makes every row of the child go through the rules again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from runs.engine.hashing import arrow_row_hashes
from runs.engine.snapshot import EntitySpec, PlanSnapshot

if TYPE_CHECKING:
    import pandas as pd

    from runs.engine.connectors.base import ChangedSince, Connector, KeyRange, TableInfo


@dataclass(frozen=True)
class Carried:
    """Keys a batch skips because nothing changed: aligned lists (source key, target key,
    source hash, row hash of the intended values, written row version), carried into the
    batch record as they were."""

    source_keys: list[str] = field(default_factory=list)
    target_keys: list[str] = field(default_factory=list)
    source_hashes: list[str] = field(default_factory=list)
    row_hashes: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    # the five lists as PostgreSQL array literals, when the target handed them over so (no
    # Python value per element: the lists other than source_keys are then left empty)
    literals: tuple[str, ...] = ()
    # the ledger seq of the batch record whose state arrays are carried whole (a key range
    # settled by its digest): the target copies them from that record (the other lists empty)
    from_seq: int | None = None

    def __len__(self) -> int:
        return len(self.source_keys)


@dataclass(frozen=True)
class FailedReference:
    """All the failures of an earlier batch, carried whole by reference: the application's
    opaque name of the batch that holds them and how many there are."""

    batch: Any
    count: int

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True)
class RowState:
    """What a batch record stores to let later runs skip its rows: the rules hash, the
    source hash of each loaded row (aligned with the rows), the batch's first and last source
    key (in source order: how later batches find this record) and the carried keys."""

    rules_hash: str
    source_hashes: list[str]
    first_key: str | None
    last_key: str | None
    carried: Carried = field(default_factory=Carried)
    # keys that failed before and are unchanged since: source key -> the earlier failed record
    # (opaque, from ``FailedLookup``); neither transformed nor loaded, counted failed. A range
    # carried whole may name them by reference instead (``FailedReference``)
    failed: dict[str, Any] | FailedReference = field(default_factory=dict)
    # range_digest of every source row of the key range (None: computed from the extract)
    digest: str | None = None
    # rows an earlier batch of the same range filtered out, when the range is carried whole
    filtered: int = 0


@dataclass(frozen=True)
class SameRange:
    """The latest live batch record of a key range whose source rows all still hash as they
    did, under the same rules, whose target rows are all as written: its ledger ids, ends,
    counts and state arrays (carried as they are)."""

    run_id: str
    batch_id: str
    first_key: str | None
    last_key: str | None
    failed: int
    filtered: int
    carried: Carried


# (rules hash, source keys, source hashes) -> source key -> an earlier run's open failed record
# of the same source row under the same rules (the application's error queue answers it)
FailedLookup = Callable[[str, list[str], list[str]], dict[str, Any]]


# (rules hash, ledger run id, ledger batch id, failures expected) -> source key -> open failed
# record of that batch, for every one of its failures, or a FailedReference to them all; None
# unless all are still open and carriable (same rules, a source hash, not coerced by the target)
FailedBatchLookup = Callable[[str, str, str, int], "dict[str, Any] | FailedReference | None"]


# The digest's form: a batch record holding a digest of another form (an older ledger's: the
# sums of each hash's 64-bit halves, "s2:", or md5(key ‖ source hash) before that) never
# equals a digest of this form, so its range goes row by row once.
DIGEST_FORM = "s3"


def range_digest(hashes: list[str]) -> str:
    """Digest of a key range's rows from their source hashes: the count and the sha256 of the
    hashes' 16 bytes each, in sorted order (order-independent) — what ``source_range_digest``
    computes on the server (bytea order is byte order, the order of lower-case hex text). A
    source hash covers the row's key (``batch.source_columns`` starts with it), so the same
    multiset of hashes is the same rows, key by key; a changed, added or deleted row keeps the
    digest only by a 128-bit row-hash or a sha256 collision. Pure."""
    return range_digest_text(len(hashes), hashlib.sha256(_sorted_heads(hashes)).hexdigest())


def _sorted_heads(hashes: list[str]) -> bytes:
    """The first 16 bytes of each hash, in sorted order, one after the other: by numpy over
    the bytes where every hash is 64 lower-case hex digits (a batch's 20,000: ~5 ms against
    ~10 by sorting the texts), else by sorting the texts (their order is the bytes' only in
    lower case)."""
    import numpy as np  # loaded with the engine; not by importing this module

    text = "".join(hashes)
    if len(text) == 64 * len(hashes) and set(map(len, hashes)) <= {64}:
        try:
            raw = bytes.fromhex(text)
        except ValueError:  # not hex: as below
            raw = b""
        if raw.hex() == text:  # lower-case hex, every one
            words = np.frombuffer(raw, dtype=">u8").reshape(-1, 4)
            order = np.lexsort((words[:, 1], words[:, 0]))  # the 16-byte heads' byte order
            return words[order, :2].tobytes()
    return bytes.fromhex("".join(sorted(h[:32] for h in hashes)))


def range_digest_text(count: int, sha: str) -> str:
    """The digest's text form from its row count and the sha256 (hex) of the sorted hashes."""
    return f"{DIGEST_FORM}:{count}:{sha}"


def eligible(entity: EntitySpec, target: Connector) -> bool:
    """Whether a row's output depends only on its source row and the rules (see module), and
    the target keeps row state (PostgreSQL)."""
    from runs.engine.batch import reference_parents

    return (
        hasattr(target, "unchanged_rows")
        and entity.load_mode == "upsert"
        and bool(entity.external_id)
        and not entity.dedupe_on
        and (not reference_parents(entity) or hasattr(target, "keymap_fingerprint"))
    )


# (run id, namespace, parent entity) -> the parent's key-map fingerprint, once per run
_PARENTS: dict[tuple[str, str, str], str] = {}


def parent_fingerprints(
    snapshot: PlanSnapshot, entity: EntitySpec, target: Connector, run_id: str
) -> dict[str, str]:
    """Parent entity -> fingerprint of its key map (``keymap_fingerprint``), for the parents
    ``entity``'s reference lookups read. Computed once per run and worker process: a run's
    children start only after every batch of their parents is done, so the key maps hold
    still for the rest of the run. Read-only but for materializing pending key-map arrays."""
    from runs.engine.batch import reference_parents

    out = {}
    for parent in sorted(reference_parents(entity)):
        key = (run_id, snapshot.plan, parent)
        if key not in _PARENTS:
            if len(_PARENTS) > 256:  # a long-lived worker: forget older runs
                _PARENTS.clear()
            _PARENTS[key] = target.keymap_fingerprint(snapshot.plan, parent)
        out[parent] = _PARENTS[key]
    return out


def rules_hash(
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    parents: dict[str, str] | None = None,
    target_table: TableInfo | None = None,
) -> str:
    """sha256 of everything besides the source row that decides an entity's rows: its frozen
    spec, the lookups it uses, the namespace, the rules format, for an entity with reference
    lookups the fingerprints of the parents' key maps (``parents``) and, when given, the
    target table's columns (what the load-stage checks compare with). Pure."""
    used = sorted(
        {
            str(value)
            for spec in entity.fields
            for step in spec.steps
            for name, value in step.params.items()
            if name == "lookup"
        }
    )
    lookups = {name: asdict(snapshot.lookups[name]) for name in used if name in snapshot.lookups}
    content = {
        "entity": asdict(entity),
        "lookups": lookups,
        "namespace": snapshot.plan,
        "rules_format": snapshot.rules_format,
    }
    if parents:  # (absent otherwise: the hashes of entities without parents stay as they were)
        content["parents"] = parents
    if target_table is not None:
        content["target"] = [
            (c.name, c.cast_type, c.nullable, c.has_default, c.generated, c.max_length)
            for c in target_table.columns
        ]
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def frame_source_hashes(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Source hash of each row of an extracted frame (its text values of ``columns``). Pure."""
    import pyarrow as pa

    if not len(frame):
        return []
    arrays = [pa.array(frame[c].astype("string[pyarrow]").array) for c in columns]
    return arrow_row_hashes(arrays)


def extract_changed(
    *,
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    key_range: KeyRange,
    source: Connector,
    target: Connector,
    changed_since: ChangedSince | None,
    run_id: str,
    failed_lookup: FailedLookup | None = None,
    target_table: TableInfo | None = None,
    failed_batch_lookup: FailedBatchLookup | None = None,
    extract: Callable[..., pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, RowState]:
    """A batch's rows that must go through the rules, and the RowState to store with it.

    When the ledger holds row state under these rules, the source hashes of the key range
    (by the source server where it can) are compared with it and the keys the target may skip
    are carried; of the others, ``failed_lookup`` names those that failed before with the same
    source row and rules (they would fail the same way): they are not extracted either. Only
    the remaining rows are extracted (or kept from the extract). Without any other run's state
    (a first run) the range is extracted whole. ``extract``: how rows are read (default the
    source's ``extract_text``, else ``extract``). Read-only; raises SchemaError,
    TransientError, EngineError."""
    from runs.engine.batch import source_columns
    from runs.engine.transform import source_key_text

    columns = source_columns(entity)
    parents = parent_fingerprints(snapshot, entity, target, run_id)
    rules = rules_hash(snapshot, entity, parents, target_table)
    extract = extract or getattr(source, "extract_text", source.extract)

    def read() -> pd.DataFrame:
        return extract(
            entity.source_table, columns, entity.source_key, key_range, changed_since=changed_since
        )

    frame: pd.DataFrame | None = None
    if not target.row_state_exists(snapshot.plan, entity.name, rules, run_id):
        frame = read()
        ends = frame.iloc[[0, -1]] if len(frame) else frame  # source_key_text is row-wise
        return frame, RowState(rules, [], *_ends(source_key_text(ends, entity.source_key).tolist()))
    digest, same = _same_range(
        source, target, snapshot, entity, rules, key_range, changed_since, failed_batch_lookup
    )
    if same is not None:
        return _empty(columns), same
    hashed = getattr(source, "source_row_hashes", None)
    if hashed is not None:
        keys, hashes = hashed(
            entity.source_table, columns, entity.source_key, key_range, changed_since=changed_since
        )
    else:
        frame = read()
        keys = source_key_text(frame, entity.source_key).tolist()
        hashes = frame_source_hashes(frame, columns)
    if digest is None:
        digest = range_digest(hashes)
    carried = target.unchanged_rows(
        entity=entity,
        namespace=snapshot.plan,
        rules_hash=rules,
        source_keys=keys,
        source_hashes=hashes,
    )
    failed = _failed_before(failed_lookup, rules, keys, hashes, set(carried.source_keys))
    state = RowState(rules, [], *_ends(keys), carried=carried, failed=failed, digest=digest)
    if frame is None and len(carried) + len(failed) == len(keys):
        return _empty(columns), state
    if frame is None:
        frame = read()
    if len(carried) or failed:  # a row new since the hashes were read is kept: not skipped
        skipped = set(carried.source_keys) | failed.keys()
        frame = frame[~source_key_text(frame, entity.source_key).isin(skipped).to_numpy()]
    return frame, state


def _same_range(
    source: Connector,
    target: Connector,
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    rules: str,
    key_range: KeyRange,
    changed_since: ChangedSince | None,
    failed_batch_lookup: FailedBatchLookup | None,
) -> tuple[str | None, RowState | None]:
    """(the range's digest by the source server, the RowState carrying the range whole) —
    the state None unless the latest live batch record with this digest under these rules
    finds all its target rows as written and all its failures still open; (None, None) where
    the source, the target or the caller cannot tell."""
    digest_of = getattr(source, "source_range_digest", None)
    find = getattr(target, "unchanged_range", None)
    if digest_of is None or find is None or failed_batch_lookup is None:
        return None, None
    from runs.engine.batch import source_columns

    digest = digest_of(
        entity.source_table,
        source_columns(entity),
        entity.source_key,
        key_range,
        changed_since=changed_since,
    )
    found = find(entity=entity, namespace=snapshot.plan, rules_hash=rules, digest=digest)
    if found is None:
        return digest, None
    failed = failed_batch_lookup(rules, found.run_id, found.batch_id, found.failed)
    if failed is None:
        return digest, None
    state = RowState(
        rules,
        [],
        found.first_key,
        found.last_key,
        carried=found.carried,
        failed=failed,
        digest=digest,
        filtered=found.filtered,
    )
    return digest, state


def _failed_before(
    lookup: FailedLookup | None,
    rules: str,
    keys: list[str],
    hashes: list[str],
    carried: set[str],
) -> dict[str, Any]:
    """The keys not carried whose earlier failure ``lookup`` still finds (same source hash
    and rules): source key -> its failed record."""
    if lookup is None:
        return {}
    left = [(k, h) for k, h in zip(keys, hashes, strict=True) if k not in carried]
    if not left:
        return {}
    return lookup(rules, [k for k, _ in left], [h for _, h in left])


def _ends(keys: list[str]) -> tuple[str | None, str | None]:
    return (keys[0], keys[-1]) if keys else (None, None)


def _empty(columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series([], dtype="string[pyarrow]") for c in columns})
