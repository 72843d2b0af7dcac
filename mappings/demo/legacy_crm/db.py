"""Connections by URL, transactions, and bulk loading of generated blocks per backend."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import numpy as np
import psycopg2
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg2 import sql

from .schema import Col, _bq, _q

# ---------------------------------------------------------------- connections


@contextmanager
def _connect(url: str) -> Iterator[tuple[str, Any]]:
    """Open ``url``; yields ("sqlite" | "postgresql" | "mysql", connection). Raises ValueError."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        conn: Any = sqlite3.connect(_sqlite_path(url), isolation_level=None)
        kind = "sqlite"
    elif scheme in ("postgresql", "postgres"):
        conn = psycopg2.connect(urlunsplit(parts._replace(scheme="postgresql")))
        kind = "postgresql"
    elif scheme == "mysql":
        import pymysql

        conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/"),
            charset="utf8mb4",
            autocommit=False,
        )
        kind = "mysql"
    else:
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}")
    try:
        yield kind, conn
    finally:
        conn.close()


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


@contextmanager
def _transaction(kind: str, conn: Any) -> Iterator[None]:
    if kind == "postgresql":
        with conn:  # commits, or rolls back on an exception
            yield
        return
    if kind == "mysql":
        conn.begin()
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return
    conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _run(kind: str, conn: Any, stmts: list[Any]) -> None:
    if kind == "sqlite":
        for stmt in stmts:
            conn.execute(stmt)
        return
    with conn.cursor() as cur:
        for stmt in stmts:
            cur.execute(stmt)


def _existing(kind: str, conn: Any, tables: tuple[str, ...]) -> set[str]:
    if kind == "sqlite":
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    else:
        schema = "DATABASE()" if kind == "mysql" else "current_schema()"
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema}"
            )
            rows = cur.fetchall()
        conn.rollback()
    return {r[0] for r in rows} & set(tables)


def _counts(kind: str, conn: Any, tables: tuple[str, ...]) -> dict[str, int]:
    if kind == "sqlite":
        return {t: conn.execute(f"SELECT count(*) FROM {_q(t)}").fetchone()[0] for t in tables}
    out = {}
    with conn.cursor() as cur:
        for t in tables:
            cur.execute(
                f"SELECT count(*) FROM {_bq(t)}"
                if kind == "mysql"
                else sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
            )
            out[t] = cur.fetchone()[0]
    conn.rollback()
    return out


def _drop(kind: str, conn: Any, tables: tuple[str, ...]) -> None:
    if kind in ("sqlite", "mysql"):
        quote = _q if kind == "sqlite" else _bq
        _run(kind, conn, [f"DROP TABLE IF EXISTS {quote(t)}" for t in reversed(tables)])
    else:
        drop = sql.SQL("DROP TABLE IF EXISTS {}")
        _run(kind, conn, [drop.format(sql.Identifier(t)) for t in reversed(tables)])


def _load(
    kind: str, conn: Any, table: str, cols: tuple[Col, ...], blocks: Iterator[dict[str, np.ndarray]]
) -> None:
    """Bulk-insert blocks: COPY (CSV, unquoted empty = NULL), or executemany (SQLite; MySQL,
    where PyMySQL folds it into multi-row INSERTs)."""
    names = [c.name for c in cols]
    if kind == "mysql":
        stmt = (
            f"INSERT INTO {_bq(table)} ({', '.join(map(_bq, names))}) "
            f"VALUES ({', '.join(['%s'] * len(names))})"
        )
        with conn.cursor() as cur:
            for block in blocks:
                cur.executemany(stmt, list(zip(*(block[n].tolist() for n in names), strict=True)))
        return
    if kind == "sqlite":
        stmt = (
            f"INSERT INTO {_q(table)} ({', '.join(map(_q, names))}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        for block in blocks:
            conn.executemany(stmt, zip(*(block[n].tolist() for n in names), strict=True))
        return
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with conn.cursor() as cur:
        for payload in _prefetch(_csv(block, cols) for block in blocks):
            cur.copy_expert(copy, payload)


def _csv(block: dict[str, np.ndarray], cols: tuple[Col, ...]) -> io.BytesIO:
    arrow = pa.table({c.name: _arrow(block[c.name], c.type) for c in cols})
    buf = io.BytesIO()
    pa_csv.write_csv(arrow, buf, pa_csv.WriteOptions(include_header=False))
    buf.seek(0)
    return buf


def _prefetch(items: Iterator[io.BytesIO]) -> Iterator[io.BytesIO]:
    """Produce the next item in a worker thread while the caller consumes the current one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _arrow(values: np.ndarray, col_type: str) -> pa.Array:
    """Integers stay integers; text is quoted in CSV so "" stays empty and NULL stays NULL."""
    if col_type in ("ID", "INTEGER"):
        return pa.array(values, type=pa.int64(), from_pandas=False)
    return pa.array(values, type=pa.string())
