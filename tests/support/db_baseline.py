"""What a transactional test leaves behind, undone in SQL: the migrated rows (roles, content
types, permissions, every row that migrations and post_migrate wrote) copied once into a side
schema of the PostgreSQL test database, and put back after each flush.

Django's serialized rollback does the same through Python: JSON of every migrated row, saved
object by object before each transactional test. Here the emptying of every table that holds
rows and one INSERT ... SELECT per copied table run in one transaction: after a transactional
test the database is exactly in its migrated state, whatever order the tests run in."""

from __future__ import annotations

from typing import Any

from django.db import transaction

SCHEMA = "mp_test_baseline"


def _quoted(connection: Any, table: str) -> str:
    return connection.ops.quote_name(table)


def _tables(connection: Any) -> list[str]:
    """The tables a flush empties (every model table; not django_migrations)."""
    return sorted(connection.introspection.django_table_names(only_existing=True))


def baseline_capture(connection: Any) -> list[str]:
    """Copy every non-empty model table into SCHEMA (replacing an earlier copy) and return
    their names; PostgreSQL only; one transaction."""
    tables = _tables(connection)
    with transaction.atomic(using=connection.alias), connection.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        kept = [t for t in tables if _non_empty(cur, connection, [t])]
        for table in kept:
            q = _quoted(connection, table)
            cur.execute(f"CREATE TABLE {SCHEMA}.{q} AS SELECT * FROM {q}")  # noqa: S608 - our names
    return kept


def _non_empty(cur: Any, connection: Any, tables: list[str]) -> list[str]:
    """The tables among ``tables`` holding at least one row (one query)."""
    if not tables:
        return []
    parts = [
        f"SELECT %s WHERE EXISTS (SELECT 1 FROM {_quoted(connection, t)})"  # noqa: S608
        for t in tables
    ]
    cur.execute(" UNION ALL ".join(parts), tables)
    return [row[0] for row in cur.fetchall()]


def baseline_restore(connection: Any, kept: list[str]) -> None:
    """Empty every model table (what Django's flush does) and put the captured rows back;
    one transaction; sequences are not reset (neither are they by the flush).

    The flush's TRUNCATE of all ~50 tables made new files for each table and index: 0.1-0.6 s
    per transactional test (load 5). Here one query finds the few tables holding rows and a
    DELETE empties each, with triggers and foreign-key checks off for the transaction
    (session_replication_role = replica; superuser, as on the test server): the tally
    triggers would otherwise write rows for what is deleted, and the end state, empty tables
    plus the migrated rows, is consistent anyway. 0.03-0.08 s."""
    with transaction.atomic(using=connection.alias), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        for table in _non_empty(cur, connection, _tables(connection)):
            cur.execute(f"DELETE FROM {_quoted(connection, table)}")  # noqa: S608 - our names
        for table in kept:
            q = _quoted(connection, table)
            cur.execute(f"INSERT INTO {q} SELECT * FROM {SCHEMA}.{q}")  # noqa: S608
