"""Introspection and small read-only queries on connected systems (short in-process cache).

Table and column names are always checked against the introspected schema and quoted
(SQLite: double quotes with "" doubling; PostgreSQL: psycopg2.sql.Identifier; MySQL:
backticks with `` doubling).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2
import pymysql
from psycopg2 import sql

from migration_planner.lib.errors import ApplicationError
from runs.engine.connectors import Connector, SchemaInfo, TableInfo, connect
from runs.engine.connectors.mysql import NO_CLEARTEXT_AUTH, MysqlConnector
from runs.engine.connectors.mysql import q as mysql_quote
from runs.engine.connectors.mysql import text_expr as mysql_text
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.errors import EngineError
from runs.engine.guard import file_path_check, server_pin

from .enums import SystemKind
from .models import System

if TYPE_CHECKING:  # pandas is loaded where a frame is made, not by importing this
    import pandas as pd

CACHE_SECONDS = 30.0
_cache: dict[tuple[int, str], tuple[float, SchemaInfo]] = {}
_lock = threading.Lock()


def connector_kind(system: System) -> str:
    """Engine connector kind: a file system is read from its staging SQLite database."""
    return "sqlite" if system.kind == SystemKind.FILE else str(system.kind)


@contextmanager
def system_connector(system: System) -> Iterator[Connector]:
    """An engine connector for ``system``, closed afterwards; ApplicationError when unusable."""
    if system.kind == SystemKind.FILE and not system.path:
        raise ApplicationError(
            f"System “{system.name}” has no staged file yet; upload one.", field="path"
        )
    if system.kind == SystemKind.FILE:
        from .destinations import guard_params
        from .staging import staged_file_local

        # this host's copy of the staging database (a worker on another host staged it);
        # connect checks the copy against this host's MP_SYSTEMS_DIR
        params = {"path": staged_file_local(system)} | guard_params(system.kind)
    else:
        params = system.guarded_connection_params()
    conn = connect(connector_kind(system), params)
    try:
        yield conn
    finally:
        conn.close()


def _cache_key(system: System) -> tuple[int, str]:
    return (system.pk, system.updated_at.isoformat() if system.updated_at else "")


def system_schema(system: System, *, fresh: bool = False) -> SchemaInfo:
    """Introspected schema, cached ~30 s per system version; ApplicationError on failure."""
    key = _cache_key(system)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and not fresh and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    try:
        with system_connector(system) as conn:
            schema = conn.introspect()
    except (EngineError, sqlite3.Error, psycopg2.Error, pymysql.Error) as exc:
        raise ApplicationError(
            f"Cannot read the schema of “{system.name}”: {exc}", field="connection"
        ) from exc
    with _lock:
        _cache[key] = (time.monotonic(), schema)
    return schema


def schema_cache_clear() -> None:
    """Forget every cached schema (after staging a file, in tests)."""
    with _lock:
        _cache.clear()


def system_table(system: System, table: str) -> TableInfo:
    """One introspected table; ApplicationError naming the system when it does not exist."""
    schema = system_schema(system)
    if table not in schema.tables:
        raise ApplicationError(f"Table “{table}” does not exist in “{system.name}”.", field="table")
    return schema.tables[table]


@dataclass
class ConnectionReport:
    ok: bool
    message: str
    tables: list[tuple[str, int]]


def system_test_connection(system: System) -> ConnectionReport:
    """Connect, read the server version and the tables' row estimates; never raises."""
    try:
        with system_connector(system) as conn:
            schema = conn.introspect()
        version = _server_version(system)
    except (
        ApplicationError,
        EngineError,
        sqlite3.Error,
        psycopg2.Error,
        pymysql.Error,
        OSError,
    ) as exc:
        text = getattr(exc, "message", None) or str(exc).strip() or exc.__class__.__name__
        return ConnectionReport(False, text, [])
    tables = sorted((t.name, t.row_estimate) for t in schema.tables.values())
    return ConnectionReport(True, version, tables)


def _server_version(system: System) -> str:
    with _raw(system) as (kind, conn):
        if kind == "sqlite":
            return "SQLite " + conn.execute("SELECT sqlite_version()").fetchone()[0]
        if kind == "mysql":
            return MysqlConnector.version_text(_fetch(conn, "SELECT VERSION()")[0][0])
        return "PostgreSQL " + _fetch(conn, "SHOW server_version")[0][0]


@contextmanager
def _raw(system: System) -> Iterator[tuple[str, Any]]:
    """A plain read-only DB-API connection to the system."""
    kind = connector_kind(system)
    params = system.guarded_connection_params()
    if kind == "sqlite":
        path = file_path_check(
            params["path"], allowed_root=params["allowed_root"], refused=params["refused_paths"]
        )
        conn = sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True, check_same_thread=False)
    else:  # the host resolved once, checked, and the connection pinned to that address
        pinned = server_pin(
            params["host"],
            params["port"],
            params["dbname"],
            default_port=params["port"],
            refused=params["refused_servers"],
        )
    if kind == "mysql":
        conn = pymysql.connect(
            host=pinned or params["host"],
            auth_plugin_map=NO_CLEARTEXT_AUTH,
            port=int(params["port"]),
            user=params.get("user") or None,
            password=params.get("password", ""),
            database=params["dbname"],
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
            init_command="SET SESSION time_zone = '+00:00'",
        )
        _fetch(conn, "SET SESSION TRANSACTION READ ONLY")
    elif kind == "postgresql":
        allowed = ("host", "port", "dbname", "user", "password", "require_auth", "sslmode")
        pin = {"hostaddr": pinned} if pinned else {}
        conn = psycopg2.connect(
            connect_timeout=5, **pin, **{k: params[k] for k in allowed if k in params}
        )
        conn.set_session(readonly=True, autocommit=True)
    try:
        yield kind, conn
    finally:
        conn.close()


def _fetch(conn: Any, text: Any, args: Sequence[Any] = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(text, tuple(args))
        return list(cur.fetchall()) if cur.description else []


@dataclass(frozen=True)
class _Dialect:
    """SQL spelling per kind: identifiers quoted, columns as text; values stay ``%s`` args."""

    kind: str
    info: TableInfo

    def ident(self, name: str) -> Any:
        if self.kind == "postgresql":
            return sql.Identifier(name)
        # SQLite: backticks, never "…" (an unknown double-quoted name reads as a string literal)
        return mysql_quote(name) if self.kind == "mysql" else "`" + name.replace("`", "``") + "`"

    def table(self) -> Any:
        if self.kind == "postgresql":
            return PostgresConnector.table_ident(self.info)
        return self.ident(self.info.name)

    def text(self, name: str) -> Any:
        """The column's value as text, as the engine's extract reads it."""
        if self.kind == "mysql":
            return mysql_text(self.info.column(name))
        return self.fmt("CAST({c} AS TEXT)", c=self.ident(name))

    def length(self, expr: Any) -> Any:
        return self.fmt("CHAR_LENGTH({e})" if self.kind == "mysql" else "length({e})", e=expr)

    def random(self) -> Any:
        return self.fmt("RAND()" if self.kind == "mysql" else "random()")

    def join(self, parts: list[Any], sep: str = ", ") -> Any:
        return sql.SQL(sep).join(parts) if self.kind == "postgresql" else sep.join(parts)

    def fmt(self, template: str, **parts: Any) -> Any:
        if self.kind == "postgresql":
            return sql.SQL(template).format(**parts)
        if self.kind == "sqlite":
            template = template.replace("%s", "?")
        return template.format(**parts)


def _query(system: System, info: TableInfo, build: Any, args: Sequence[Any] = ()) -> list[tuple]:
    """Run a SELECT built by ``build(dialect)``; table and columns already checked."""
    try:
        with _raw(system) as (kind, conn):
            text = build(_Dialect(kind, info))
            if kind == "sqlite":
                return conn.execute(text, list(args)).fetchall()
            return _fetch(conn, text, args)
    except (sqlite3.Error, psycopg2.Error, pymysql.Error) as exc:
        raise ApplicationError(f"Query on “{system.name}”.“{info.name}” failed: {exc}") from exc


def sample_frame(
    system: System,
    table: str,
    columns: Sequence[str],
    *,
    limit: int,
    order: str = "first",
    key: Sequence[str] = (),
) -> pd.DataFrame:
    """Up to ``limit`` rows as text (str/None), first by key or random; read-only."""
    info = system_table(system, table)
    names = list(dict.fromkeys(columns))
    _require(system, info, [*names, *key])

    def build(d: _Dialect) -> Any:
        if order == "random":
            order_by = d.random()
        else:
            order_by = d.join([d.ident(c) for c in key]) if key else d.fmt("1")
        return d.fmt(
            "SELECT {cols} FROM {tbl} ORDER BY {order} LIMIT %s",
            cols=d.join([d.text(c) for c in names]),
            tbl=d.table(),
            order=order_by,
        )

    rows = _query(system, info, build, [int(limit)])
    import pandas as pd  # loaded here: launching a run needs the schema, not pandas

    return pd.DataFrame([list(r) for r in rows], columns=names, dtype=object)


def count_longer(system: System, table: str, column: str, length: int) -> int:
    """How many values of ``column`` are longer than ``length`` characters (one COUNT query)."""
    info = system_table(system, table)
    _require(system, info, [column])

    def build(d: _Dialect) -> Any:
        return d.fmt(
            "SELECT count(*) FROM {tbl} WHERE {n} > %s", tbl=d.table(), n=d.length(d.text(column))
        )

    return int(_query(system, info, build, [int(length)])[0][0])


def value_counts(system: System, table: str, column: str, *, limit: int = 2000) -> list[tuple]:
    """The most frequent values of ``column`` with their counts (GROUP BY, at most ``limit``)."""
    info = system_table(system, table)
    _require(system, info, [column])

    def build(d: _Dialect) -> Any:
        return d.fmt(
            "SELECT {v}, count(*) FROM {tbl} GROUP BY 1 ORDER BY 2 DESC LIMIT %s",
            v=d.text(column),
            tbl=d.table(),
        )

    return _query(system, info, build, [int(limit)])


def _require(system: System, info: TableInfo, names: Sequence[str]) -> None:
    known = set(info.column_names)
    for name in names:
        if name not in known:
            raise ApplicationError(
                f"Column “{name}” does not exist in “{system.name}”.“{info.name}”.", field="column"
            )


def has_keymap(system: System) -> bool:
    """True when the system already holds the engine's key map (a run has loaded into it)."""
    if connector_kind(system) == "mysql":
        return False  # a source only: never loaded into
    try:
        with _raw(system) as (kind, conn):
            if kind == "sqlite":
                return (
                    conn.execute(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'mp_ledger_keymap'"
                    ).fetchone()
                    is not None
                )
            return bool(_fetch(conn, "SELECT to_regclass('mp_ledger_keymap') IS NOT NULL")[0][0])
    except (sqlite3.Error, psycopg2.Error):
        return False


def lookup_misses(*, entity, field, steps, step) -> tuple[list[tuple[str, int]], int, str | None]:
    """Source values (after the steps before ``step``) a value_map's lookup table does not map,
    with their row counts, most frequent first; the number of rows whose value is NULL or
    blank and not mapped by the table (they follow ``on_null``); the table's default.
    Read-only; one GROUP BY on the source."""
    import pandas as pd

    from runs.engine.rules import RuleContext, RuleParamError, run_step

    lookup = entity.plan.lookups.filter(name=step.params.get("lookup")).first()
    if lookup is None:
        return [], 0, None
    counts = value_counts(entity.plan.source, entity.source_table, field.source_columns[0])
    values = pd.Series([v for v, _ in counts], dtype=object)
    try:
        for earlier in steps:
            values = run_step(earlier.rule, values, earlier.params, RuleContext()).values
    except (RuleParamError, EngineError):
        return [], 0, lookup.default_value
    keys = set(lookup.entries.values_list("key", flat=True))
    if step.params.get("ignore_case"):
        keys = {k.strip().lower() for k in keys}
    misses: dict[str, int] = {}
    nulls = 0
    for value, (_, n) in zip(values.tolist(), counts, strict=True):
        if value is None or value is pd.NA or (value == "" and "" not in keys):
            nulls += int(n)
            continue
        probe = str(value).strip().lower() if step.params.get("ignore_case") else str(value)
        if probe not in keys:
            misses[str(value)] = misses.get(str(value), 0) + int(n)
    return sorted(misses.items(), key=lambda kv: (-kv[1], kv[0])), nulls, lookup.default_value
