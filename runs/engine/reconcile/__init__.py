"""Key-level reconciliation, data-diff style: compare checksums per key range, narrow the ranges
that differ, and only fetch row hashes for small ranges that still differ.

Two *sides* are compared, e.g. the ledger (the hash of every row as the run wrote it) and the
target table as it is now. A side maps each row to an integer *position* (the key itself for an
integer key, else a 60-bit hash of the key text) and can report, for a list of half-open
position ranges ``[lo, hi)``, the row count and the sum of 64-bit row digests in each range, and
the (key -> row hash) pairs in a range. ``PgSide`` does this in SQL on PostgreSQL;
``MemorySide`` holds a dict (tests, small targets). Plain Python: no Django import.

Modules by role: ``ranges`` (the pure comparison), ``postgres`` (the SQL side), ``entity`` (one
entity's ledger against its target table), ``rows`` (values, rows and aggregates).
"""

from .entity import integer_key, reconcile_in_memory, reconcile_pg
from .postgres import CursorFactory, PgSide, pg_position_sql, pg_row_hash_sql, table_source
from .ranges import (
    MASK64,
    KeyDiff,
    MemorySide,
    Ranges,
    RangeSide,
    Stats,
    diff_sides,
    hash_digest,
    key_position,
    split,
)
from .rows import (
    RunAggregates,
    compare_rows,
    iter_chunks,
    pg_fetch_rows,
    pg_orphans,
    pg_run_aggregate,
    pg_run_aggregates,
    values_equal,
)

__all__ = [
    "MASK64",
    "CursorFactory",
    "KeyDiff",
    "MemorySide",
    "PgSide",
    "RangeSide",
    "RunAggregates",
    "Ranges",
    "Stats",
    "compare_rows",
    "diff_sides",
    "hash_digest",
    "integer_key",
    "iter_chunks",
    "key_position",
    "pg_fetch_rows",
    "pg_orphans",
    "pg_position_sql",
    "pg_row_hash_sql",
    "pg_run_aggregate",
    "pg_run_aggregates",
    "reconcile_in_memory",
    "reconcile_pg",
    "split",
    "table_source",
    "values_equal",
]
