"""A known set of source keys resolved through the key map at once, on the server, without
moving the pending pairs in (``keymap_resolved``).

A batch keeps its key-map pairs as arrays in its ledger record; the first ``keymap_lookup``
moves every pending pair of the entity into ``mp_ledger.keymap`` (ledger.py). For a caller that
knows every key it will ask for up front (a report's sample: 5 % of a run's keys), that move is
most of the work: one INSERT of every pair, 48 s of a 10 M-row run's report. Here the keys go
into a temporary table, and ONE statement gives each the target key the key map would give
once the pending pairs were in — the pair of the last batch in commit order, else the key
map's own row — read from the arrays and the key map in one snapshot. The key map and the
batch records are left as they are."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from runs.engine.errors import TransientError

from .operations import csv_bytes, text_array

if TYPE_CHECKING:
    from . import PostgresConnector

_WANT = "pg_temp.mp_keymap_want"
_FOUND = "pg_temp.mp_keymap_found"
# A key's pending pair of the batch committed last wins (what ``_keymap_apply`` leaves); a key
# no pending batch maps keeps the key map's pair.
_RESOLVE = f"""
CREATE TEMP TABLE mp_keymap_found AS
WITH pending AS (
    SELECT DISTINCT ON (u.s) u.s, u.t
    FROM mp_ledger.batch b
    CROSS JOIN LATERAL unnest(b.keymap_source, b.keymap_target) WITH ORDINALITY AS u(s, t, o)
    WHERE b.namespace = %(namespace)s AND b.entity = %(entity)s
        AND b.keymap_source IS NOT NULL AND u.s IN (SELECT s FROM {_WANT})
    ORDER BY u.s, b.committed_at DESC, b.seq DESC, u.o DESC)
SELECT s, t FROM pending
UNION ALL
SELECT k.source_key, k.target_key FROM mp_ledger.keymap k
WHERE k.namespace = %(namespace)s AND k.entity = %(entity)s
    AND k.source_key IN (SELECT s FROM {_WANT})
    AND NOT EXISTS (SELECT 1 FROM pending p WHERE p.s = k.source_key)
"""


@contextmanager
def keymap_resolved(
    conn: PostgresConnector, namespace: str, entity: str, source_keys: Iterable[Sequence[str]]
) -> Iterator[Callable[[Sequence[str]], dict[str, str]]]:
    """Resolve every key of ``source_keys`` (blocks of source key texts) in one transaction,
    then yield a lookup (some of those keys -> their target keys; keys the key map does not
    know are absent). Read-only for the ledger; the temporary tables are dropped at the end
    (an error while resolving rolls them back). Raises TransientError on connection loss."""
    conn.ensure_ledger()
    with conn._tx() as cur:  # noqa: SLF001 - the connector's own transaction
        cur.execute(f"DROP TABLE IF EXISTS {_WANT}, {_FOUND}")
        cur.execute("CREATE TEMP TABLE mp_keymap_want (s text)")
        for block in source_keys:
            if len(block):
                data = csv_bytes([[str(k) for k in block]])
                cur.copy_expert(f"COPY {_WANT} (s) FROM STDIN WITH (FORMAT csv)", io.BytesIO(data))
        cur.execute(f"ANALYZE {_WANT}")
        cur.execute(_RESOLVE, {"namespace": namespace, "entity": entity})
        cur.execute(f"DROP TABLE {_WANT}")
        cur.execute(f"CREATE UNIQUE INDEX ON {_FOUND} (s)")
        cur.execute(f"ANALYZE {_FOUND}")

    def lookup(keys: Sequence[str]) -> dict[str, str]:
        query = f"SELECT s, t FROM {_FOUND} WHERE s = ANY(%s::text[])"
        rows = conn._queries((query, [text_array(keys)]))[0]  # noqa: SLF001
        return {r[0]: r[1] for r in rows}

    try:
        yield lookup
    finally:
        try:
            with conn._tx() as cur:  # noqa: SLF001
                cur.execute(f"DROP TABLE IF EXISTS {_FOUND}")
        except TransientError:
            pass  # the session is lost, and its temporary tables with it
