"""PostgreSQL connector (source and target) on psycopg2: COPY in and out, ledger in ``mp_ledger``.

Type names used in casts (``CAST(x AS type)``) come from ``format_type(atttypid, atttypmod)`` in
the catalog — the full declared type with its typmod (``character(3)``, ``numeric(10,2)``) —
never from plan text; table and column names are checked against ``introspect()`` and quoted.

Laid out like a Django database backend, one role per module: ``base`` (the connector, composed
from the roles), ``plumbing`` (connection, transactions), ``introspection``, ``source``,
``target``, ``readback`` (a batch read back before its commit), ``ledger`` (batch records,
key map, rollback), ``deletes``, ``checks`` (checksums, row hashes), ``operations`` (the
dialect object and helpers: quoting, COPY CSV). What every SQL database does alike is in
``connectors/base`` (``SqlSource``, ``SqlTarget``, ``SqlLedger``, ``SqlDeletes``, ``SqlChecks``).
"""

from .base import PostgresConnector
from .ledger import _stored_result, pack_failures, unpack_failures
from .operations import _cast, csv_bytes, frame_arrays, parse_copy_csv, text_array, text_copy_bytes

__all__ = [
    "PostgresConnector",
    "_cast",
    "_stored_result",
    "csv_bytes",
    "frame_arrays",
    "pack_failures",
    "parse_copy_csv",
    "text_array",
    "text_copy_bytes",
    "unpack_failures",
]
