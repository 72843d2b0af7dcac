"""The PostgreSQL connector, composed from its roles the way Django composes a database backend
(``base.py`` wraps ``introspection``, ``source``, ``target``, ``ledger``, ``checks``)."""

from __future__ import annotations

from .checks import PostgresChecks
from .deletes import PostgresDeletes
from .introspection import PostgresIntrospection
from .ledger import PostgresLedger
from .source import PostgresSource
from .target import PostgresTarget


class PostgresConnector(
    PostgresIntrospection,
    PostgresSource,
    PostgresTarget,
    PostgresLedger,
    PostgresDeletes,
    PostgresChecks,
):
    """Source and target on one PostgreSQL database; one psycopg2 connection, lazily opened."""
