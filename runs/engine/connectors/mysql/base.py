"""The MySQL/MariaDB connector (a source only), composed from its roles like the other backends."""

from __future__ import annotations

from .introspection import MysqlIntrospection
from .source import MysqlSource


class MysqlConnector(
    MysqlIntrospection,
    MysqlSource,
):
    """Source on one MySQL (8.0+) or MariaDB (10.2+) database; one PyMySQL connection."""
