"""SQLite connector (source and target) on the stdlib ``sqlite3``; ledger tables ``mp_ledger_*``.

Table and column names are checked against ``introspect()`` and double-quoted with ``"``
doubled; values always travel as bound parameters.

Laid out like a Django database backend, one role per module: ``base`` (the connector, composed
from the roles), ``plumbing`` (connection, transactions), ``introspection``, ``source``,
``target``, ``ledger`` (batch records, key map, rollback), ``deletes``, ``checks`` (checksums,
row hashes), ``operations`` (dialect helpers: quoting, JSON-safe values).
"""

from .base import SqliteConnector
from .ledger import _stored_result
from .operations import _from_json, _jsonable, q
from .plumbing import BUSY_TIMEOUT_MS

__all__ = ["BUSY_TIMEOUT_MS", "SqliteConnector", "_from_json", "_jsonable", "_stored_result", "q"]
