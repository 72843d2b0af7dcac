"""MySQL / MariaDB connector on PyMySQL: a source only (a legacy database to migrate from).

Table and column names are checked against ``introspect()`` and quoted with backticks (an
embedded backtick doubled, ``%`` doubled for PyMySQL's parameter formatting); values always
travel as bound parameters. Keyset batches use ``ROW_NUMBER()`` (MySQL 8.0+, MariaDB 10.2+),
never OFFSET, and compare keys under the column's own collation, which is also the order the
bounds were taken in. Values are extracted as the server's own text (``CAST(… AS CHAR)``, in
utf8mb4 whatever the column's charset; binary columns as ``\\x`` + hex like PostgreSQL's
bytea; TIMESTAMP columns in UTC: the session's time zone is ``+00:00``).

Laid out like the other backends, one role per module: ``base`` (the connector, composed from
its roles), ``plumbing`` (connection, cursors, the refusal of target calls), ``introspection``,
``source``, ``operations`` (dialect helpers).
"""

from .base import MysqlConnector
from .operations import q, text_expr
from .plumbing import DEFAULT_PORT, NO_CLEARTEXT_AUTH

__all__ = ["DEFAULT_PORT", "MysqlConnector", "NO_CLEARTEXT_AUTH", "q", "text_expr"]
