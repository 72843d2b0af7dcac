"""The SQLite connector, composed from its roles the way Django composes a database backend
(``base.py`` wraps ``introspection``, ``source``, ``target``, ``ledger``, ``checks``)."""

from __future__ import annotations

from .checks import SqliteChecks
from .deletes import SqliteDeletes
from .introspection import SqliteIntrospection
from .ledger import SqliteLedger
from .source import SqliteSource
from .target import SqliteTarget


class SqliteConnector(
    SqliteIntrospection,
    SqliteSource,
    SqliteTarget,
    SqliteLedger,
    SqliteDeletes,
    SqliteChecks,
):
    """Source and target on one SQLite file; autocommit connection, explicit transactions."""
