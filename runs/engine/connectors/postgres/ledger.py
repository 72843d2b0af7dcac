"""The ledger in ``mp_ledger``: batch records, key map, deletes, rolling a batch back."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import orjson
import psycopg2.errors
import pyarrow as pa
from psycopg2 import sql

from runs.engine.connectors.base import ColumnInfo, LoadResult, TableInfo
from runs.engine.connectors.base.ledger import SqlLedger, stored_result
from runs.engine.unchanged import Carried, SameRange

from . import keymap as pg_keymap
from . import unchanged as pg_unchanged

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec
from .operations import _cast, csv_bytes, text_array
from .plumbing import PostgresPlumbing

_LEDGER_DDL = (
    """
CREATE SCHEMA IF NOT EXISTS mp_ledger;
CREATE TABLE IF NOT EXISTS mp_ledger.batch (
    run_id text NOT NULL, batch_id text NOT NULL, entity text NOT NULL,
    target_table text NOT NULL, target_key_column text NOT NULL,
    seq bigserial, committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    result_meta jsonb NOT NULL DEFAULT '{}', load_result jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, batch_id));
CREATE TABLE IF NOT EXISTS mp_ledger.row (
    run_id text NOT NULL, batch_id text NOT NULL, entity text NOT NULL,
    target_table text NOT NULL, target_key text NOT NULL,
    action text NOT NULL CHECK (action IN ('insert', 'update')),
    before_image jsonb, row_hash text NOT NULL);
CREATE INDEX IF NOT EXISTS row_batch_idx ON mp_ledger.row (run_id, batch_id);
CREATE TABLE IF NOT EXISTS mp_ledger.keymap (
    namespace text NOT NULL, entity text NOT NULL, source_key text NOT NULL,
    target_key text NOT NULL, run_id text NOT NULL, batch_id text NOT NULL,
    PRIMARY KEY (namespace, entity, source_key));
CREATE INDEX IF NOT EXISTS keymap_batch_idx ON mp_ledger.keymap (run_id, batch_id);
ALTER TABLE mp_ledger.batch ADD COLUMN IF NOT EXISTS failures bytea,
    ADD COLUMN IF NOT EXISTS namespace text,
    ADD COLUMN IF NOT EXISTS keymap_source text[], ADD COLUMN IF NOT EXISTS keymap_target text[];
CREATE INDEX IF NOT EXISTS batch_keymap_pending_idx ON mp_ledger.batch (namespace, entity)
    WHERE keymap_source IS NOT NULL;
ALTER TABLE mp_ledger.batch ADD COLUMN IF NOT EXISTS inserted_keys text[],
    ADD COLUMN IF NOT EXISTS inserted_hashes text[];
-- A batch record holds four 16,700-element text arrays: lz4 compresses them in ~1/3 of
-- pglz's time for the same size (53 -> 38 ms per record); failures are zstd-packed already.
-- Skipped on servers built without lz4 (optional, only speed depends on it).
DO $mp$ BEGIN
    EXECUTE 'ALTER TABLE mp_ledger.batch ALTER COLUMN keymap_source SET COMPRESSION lz4, '
        'ALTER COLUMN keymap_target SET COMPRESSION lz4, '
        'ALTER COLUMN inserted_keys SET COMPRESSION lz4, '
        'ALTER COLUMN inserted_hashes SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL;
END $mp$;
ALTER TABLE mp_ledger.batch ALTER COLUMN failures SET STORAGE EXTERNAL;
CREATE OR REPLACE VIEW mp_ledger.written AS
    SELECT r.run_id, r.batch_id, r.entity, r.target_table, r.target_key, r.action,
        r.before_image, r.row_hash, b.seq
    FROM mp_ledger.row r JOIN mp_ledger.batch b USING (run_id, batch_id)
    UNION ALL
    SELECT b.run_id, b.batch_id, b.entity, b.target_table, u.k, 'insert', NULL::jsonb, u.h, b.seq
    FROM mp_ledger.batch b CROSS JOIN LATERAL unnest(b.inserted_keys, b.inserted_hashes) AS u(k, h)
    WHERE b.inserted_keys IS NOT NULL;
"""
    + pg_unchanged.LEDGER_DDL
)


# The written view (its last column) and the covered view (unchanged.LEDGER_DDL): when both
# exist, the ledger is complete.
_LEDGER_READY = (
    "SELECT EXISTS (SELECT 1 FROM pg_attribute "
    "WHERE attrelid = to_regclass('mp_ledger.written') AND attname = 'seq') AND "
    + pg_unchanged.LEDGER_READY.removeprefix("SELECT ")
)


_KEYMAP_INSERT = (
    "INSERT INTO mp_ledger.keymap AS k (namespace, entity, source_key, target_key, run_id, "
    "batch_id) "
)
_KEYMAP_CONFLICT = (
    " ON CONFLICT (namespace, entity, source_key) DO UPDATE SET target_key = "
    "EXCLUDED.target_key, run_id = EXCLUDED.run_id, batch_id = EXCLUDED.batch_id "
    "WHERE k.target_key IS DISTINCT FROM EXCLUDED.target_key"
)
_KEYMAP_UPSERT = (
    _KEYMAP_INSERT + "SELECT %s, %s, m.s, m.t, %s, %s FROM ({source}) AS m(s, t)" + _KEYMAP_CONFLICT
)
# Every pending pair of the listed batches (run ids, batch ids), in source-key order (the key
# map's index order: ~30 % less index work than batch order), a key's pairs in commit order.
_KEYMAP_PENDING = (
    _KEYMAP_INSERT + "SELECT %s, %s, u.s, u.t, b.run_id, b.batch_id "
    "FROM unnest(%s::text[], %s::text[]) AS p(r, i) "
    "JOIN mp_ledger.batch b ON b.run_id = p.r AND b.batch_id = p.i "
    "CROSS JOIN LATERAL unnest(b.keymap_source, b.keymap_target) AS u(s, t) "
    "ORDER BY u.s, b.committed_at, b.seq"
)


def _keymap_apply(cur: Any, namespace: str, entity: str, pending: list[tuple[str, str]]) -> None:
    """Apply the pending batches' pairs as each batch's upsert in commit order would: in ONE
    statement when no key is in two of them — a plain INSERT into an entity with no pair yet
    (no conflict check: ~half the server time), else one upsert; a key in two pending batches
    makes that statement fail (unique or cardinality violation): rolled back to a savepoint,
    then each batch's upsert in commit order. Inside the caller's transaction; raises other
    database errors."""
    ids = (text_array(p[0] for p in pending), text_array(p[1] for p in pending))
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM mp_ledger.keymap WHERE namespace = %s AND entity = %s)",
        (namespace, entity),
    )
    # a pair inserted meanwhile by someone else makes the plain INSERT fail too: same fallback
    statement = _KEYMAP_PENDING + (_KEYMAP_CONFLICT if cur.fetchone()[0] else "")
    cur.execute("SAVEPOINT mp_keymap")
    try:
        cur.execute(statement, (namespace, entity, *ids))
    except (psycopg2.errors.UniqueViolation, psycopg2.errors.CardinalityViolation):
        cur.execute("ROLLBACK TO SAVEPOINT mp_keymap")
        for run_id, batch_id in pending:
            cur.execute(
                _KEYMAP_UPSERT.format(
                    source="SELECT u.s, u.t FROM mp_ledger.batch b, "
                    "unnest(b.keymap_source, b.keymap_target) AS u(s, t) "
                    "WHERE b.run_id = %s AND b.batch_id = %s"
                ),
                (namespace, entity, run_id, batch_id, run_id, batch_id),
            )
    cur.execute("RELEASE SAVEPOINT mp_keymap")


_LEDGER_ROW_COPY = (
    "COPY mp_ledger.row (run_id, batch_id, entity, target_table, target_key, "
    "action, before_image, row_hash) FROM STDIN WITH (FORMAT csv)"
)


# Packed failures: magic, the JSON's length (8 bytes, big-endian), the JSON zstd-compressed at
# level 1 by pyarrow's bundled codec. 3,300 failures (3.4 MB of JSON): 5.5 ms and 0.51 MB,
# where zlib at level 1 took 18 ms for 0.68 MB. Older ledgers hold zlib streams; both read.
_PACK_MAGIC = b"MPz1"


def pack_failures(failures: Sequence[dict[str, Any]]) -> bytes:
    """A batch's failures as compressed JSON (the ledger keeps them for a retry): their own
    JSON where they make it (``failure_block.FailureMetas``), else orjson's. Pure."""
    made = getattr(failures, "json_bytes", None)
    data = made() if made is not None else orjson.dumps(failures, default=str)
    packed = pa.Codec("zstd", compression_level=1).compress(data, asbytes=True)
    return _PACK_MAGIC + len(data).to_bytes(8, "big") + packed


def unpack_failures(packed: bytes) -> list[dict[str, Any]]:
    """The failures ``pack_failures`` stored (or the zlib form of older ledgers). Pure."""
    if packed.startswith(_PACK_MAGIC):
        size = int.from_bytes(packed[4:12], "big")
        data = pa.Codec("zstd").decompress(packed[12:], decompressed_size=size, asbytes=True)
    else:
        data = zlib.decompress(packed)
    return orjson.loads(data)


def _stored_result(cur: Any, run_id: str, batch_id: str) -> LoadResult | None:
    cur.execute(
        "SELECT load_result, result_meta, failures FROM mp_ledger.batch "
        "WHERE run_id = %s AND batch_id = %s",
        (run_id, batch_id),
    )
    rec = cur.fetchone()
    if rec is None:
        return None
    load, meta, packed = rec
    if packed is not None:
        meta = {**meta, "failures": unpack_failures(bytes(packed))}
    return stored_result(load, meta)


def _write_ledger(
    cur: Any, entity: EntitySpec, run_id: str, batch_id: str, written: list[tuple]
) -> None:
    if not written:
        return
    n = len(written)
    columns = [
        [run_id] * n,
        [batch_id] * n,
        [entity.name] * n,
        [entity.target_table] * n,
        [w[0] for w in written],
        ["insert" if w[1] else "update" for w in written],
        [w[2] for w in written],
        [w[3] for w in written],
    ]
    cur.copy_expert(_LEDGER_ROW_COPY, io.BytesIO(csv_bytes(columns)))


class PostgresLedger(SqlLedger, PostgresPlumbing):
    """The ledger in ``mp_ledger``: batch records, key map, deletes, rolling a batch back."""

    _stored_result = staticmethod(_stored_result)

    @contextmanager
    def _batch_tx(self, run_id: str, batch_id: str) -> Iterator[Any]:
        """A batch's transaction, holding its advisory lock (concurrent attempts wait)."""
        with self._tx() as cur:
            self._lock(cur, run_id, batch_id)
            yield cur

    def ensure_ledger(self) -> None:
        """Create schema mp_ledger and its tables if missing. Idempotent, concurrency-safe.
        Checked every time (one catalog lookup): connectors live as long as the worker, and
        the ledger may have been dropped in between (a reset target)."""
        with self._tx() as cur:
            # When the DDL's last object exists, no DDL (ALTER TABLE would take an exclusive
            # lock and deadlock against a concurrent batch's insert).
            cur.execute(_LEDGER_READY)
            if not cur.fetchone()[0]:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('mp_ledger.ddl', 0))")
                cur.execute(_LEDGER_READY)  # another process may have finished meanwhile
                if not cur.fetchone()[0]:
                    cur.execute(_LEDGER_DDL)

    def ledger_order(self, run_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(run id, batch id) of every batch recorded for ``run_ids``, in commit order."""
        self.ensure_ledger()
        with self._tx() as cur:
            cur.execute(
                "SELECT run_id, batch_id FROM mp_ledger.batch WHERE run_id = ANY(%s::text[]) "
                "ORDER BY seq",
                (text_array(run_ids),),
            )
            return [(r[0], r[1]) for r in cur.fetchall()]

    def source_row_hashes(self, *args: Any, **kwargs: Any) -> tuple[list[str], list[str]]:
        """Source key texts and source hashes of one key range, by the server (unchanged.py)."""
        return pg_unchanged.source_row_hashes(self, *args, **kwargs)

    def source_range_digest(self, *args: Any, **kwargs: Any) -> str:
        """The digest of one key range's source rows, by the server (unchanged.py)."""
        return pg_unchanged.source_range_digest(self, *args, **kwargs)

    def unchanged_range(self, **kwargs: Any) -> SameRange | None:
        """The batch record a key range with this digest may be carried from (unchanged.py)."""
        return pg_unchanged.unchanged_range(self, **kwargs)

    def row_state_exists(self, namespace: str, entity: str, rules_hash: str, run_id: str) -> bool:
        """Whether another run's ledger holds re-run row state for ``entity`` (these rules)."""
        return pg_unchanged.row_state_exists(self, namespace, entity, rules_hash, run_id)

    def keymap_resolved(
        self, namespace: str, entity: str, source_keys: Iterable[Sequence[str]]
    ) -> AbstractContextManager[Callable[[Sequence[str]], dict[str, str]]]:
        """A lookup for a known set of keys, resolved at once, nothing moved (keymap.py)."""
        return pg_keymap.keymap_resolved(self, namespace, entity, source_keys)

    def keymap_fingerprint(self, namespace: str, entity: str) -> str:
        """The entity's key map as one comparable text (unchanged.keymap_fingerprint)."""
        return pg_unchanged.keymap_fingerprint(self, namespace, entity)

    def unchanged_rows(self, **kwargs: Any) -> Carried:
        """Keys a batch may skip, as they were recorded (unchanged.unchanged_rows)."""
        return pg_unchanged.unchanged_rows(self, **kwargs)

    def ledger_batches(self, run_id: str) -> list[str]:
        """Batch ids recorded for ``run_id``, in commit order."""
        self.ensure_ledger()
        with self._tx() as cur:
            cur.execute(
                "SELECT batch_id FROM mp_ledger.batch WHERE run_id = %s ORDER BY committed_at, seq",
                (run_id,),
            )
            return [r[0] for r in cur.fetchall()]

    def _keymap_pending(self, namespace: str, entity: str) -> None:
        """Key-map pairs batches kept as arrays go in first (``_materialize_keymap``)."""
        self._materialize_keymap(namespace, entity)

    def _materialize_keymap(self, namespace: str, entity: str) -> None:
        """Move the (source key -> target key) arrays batches stored into mp_ledger.keymap.

        A batch keeps its pairs as two arrays in its own ledger record (one row instead of
        one indexed row per key: ~10 ms instead of ~250 ms per 50,000 rows); the first lookup
        of the entity's key map applies every pending batch, with the result of each batch's
        upsert in commit order (``_keymap_apply``). Idempotent; one transaction under an
        advisory lock."""
        with self._tx() as cur:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM mp_ledger.batch WHERE namespace = %s "
                "AND entity = %s AND keymap_source IS NOT NULL)",
                (namespace, entity),
            )
            if not cur.fetchone()[0]:
                return
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"mp_ledger.keymap\x1f{namespace}\x1f{entity}",),
            )
            cur.execute(
                "SELECT run_id, batch_id FROM mp_ledger.batch WHERE namespace = %s "
                "AND entity = %s AND keymap_source IS NOT NULL ORDER BY committed_at, seq",
                (namespace, entity),
            )
            pending = [(r[0], r[1]) for r in cur.fetchall()]
            _keymap_apply(cur, namespace, entity, pending)
            # only the batches read above: one committed meanwhile stays pending
            cur.execute(
                "UPDATE mp_ledger.batch b SET keymap_source = NULL, keymap_target = NULL "
                "FROM unnest(%s::text[], %s::text[]) AS p(r, i) "
                "WHERE b.run_id = p.r AND b.batch_id = p.i",
                (text_array(p[0] for p in pending), text_array(p[1] for p in pending)),
            )

    @staticmethod
    def _lock(cur: Any, run_id: str, batch_id: str) -> None:
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"mp_ledger.batch\x1f{run_id}\x1f{batch_id}",),
        )

    def _undo_rows(
        self, cur: Any, info: TableInfo, tk: ColumnInfo, run_id: str, batch_id: str
    ) -> tuple[int, int]:
        ledger = sql.SQL("mp_ledger.written r")
        match = sql.SQL("r.run_id = %s AND r.batch_id = %s AND r.action = {} AND t.{} = {}")
        key = _cast(sql.SQL("r.target_key"), tk)
        cur.execute(
            sql.SQL("DELETE FROM {t} AS t USING {l} WHERE {m}").format(
                t=self.table_ident(info),
                l=ledger,
                m=match.format(sql.Literal("insert"), sql.Identifier(tk.name), key),
            ),
            (run_id, batch_id),
        )
        deleted = cur.rowcount
        restore = [c.name for c in info.columns if not c.generated and c.name != tk.name]
        if not restore:
            return deleted, 0
        cur.execute(
            sql.SQL(
                "UPDATE {t} AS t SET {sets} FROM {l} "
                "CROSS JOIN LATERAL jsonb_populate_record(NULL::{t}, r.before_image) AS p WHERE {m}"
            ).format(
                t=self.table_ident(info),
                l=ledger,
                sets=sql.SQL(", ").join(
                    sql.SQL("{0} = p.{0}").format(sql.Identifier(c)) for c in restore
                ),
                m=match.format(sql.Literal("update"), sql.Identifier(tk.name), key),
            ),
            (run_id, batch_id),
        )
        return deleted, cur.rowcount
