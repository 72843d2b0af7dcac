"""Write a file's rows into a staging table (SQLite or PostgreSQL), a chunk at a time, in one
transaction: all or nothing, and never more than one chunk of rows in memory."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from itertools import islice

import psycopg2
from psycopg2 import sql

from runs.engine.errors import StagingError, TransientError

from .records import ROW_COLUMN, Row, Stream

_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

Progress = Callable[[int, int], None]


def _chunks(stream: Stream, size: int) -> Iterator[list[Row]]:
    while chunk := list(islice(stream.rows, size)):
        yield chunk


def _sqlite_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stage_sqlite(
    path: str, table: str, stream: Stream, *, replace: bool, chunk: int, progress: Progress | None
) -> int:
    """Create ``table`` and fill it from the stream in ONE transaction; returns the row count."""
    target = _sqlite_quote(table)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StagingError(f"cannot open the SQLite destination: {exc}") from None
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if replace:
                conn.execute(f"DROP TABLE IF EXISTS {target}")
            elif conn.execute(
                "SELECT 1 FROM sqlite_master WHERE lower(name) = lower(?)", (table,)
            ).fetchone():
                raise StagingError(f"table {table!r} already exists (use replace to overwrite)")
            rows = _fill_sqlite(conn, target, stream, chunk, progress)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StagingError(f"staging into SQLite failed: {exc}") from None
    finally:
        conn.close()
    return rows


def _fill_sqlite(
    conn: sqlite3.Connection, target: str, stream: Stream, chunk: int, progress: Progress | None
) -> int:
    created = 0  # columns the table has
    rows = 0
    insert = ""
    for batch in _chunks(stream, chunk):
        created, insert = _sqlite_columns(conn, target, stream, created, insert)
        width = created
        conn.executemany(
            insert,
            ((rows + n, *row, *[None] * (width - len(row))) for n, row in enumerate(batch, 1)),
        )
        rows += len(batch)
        if progress:
            progress(rows, stream.bytes_read())
    _sqlite_columns(conn, target, stream, created, insert)
    return rows


def _sqlite_columns(
    conn: sqlite3.Connection, target: str, stream: Stream, created: int, insert: str
) -> tuple[int, str]:
    """Create the table, or add the columns the stream has found since; the INSERT for it."""
    names = stream.columns.names
    if created and created == len(names):
        return created, insert
    quoted = [_sqlite_quote(c) for c in names]
    if not created:
        conn.execute(
            f"CREATE TABLE {target} ({_sqlite_quote(ROW_COLUMN)} INTEGER PRIMARY KEY"
            + "".join(f", {q} TEXT" for q in quoted)
            + ")"
        )
    else:
        for q in quoted[created:]:
            conn.execute(f"ALTER TABLE {target} ADD COLUMN {q} TEXT")
    all_names = ", ".join([_sqlite_quote(ROW_COLUMN), *quoted])
    marks = ", ".join("?" * (len(names) + 1))
    return len(names), f"INSERT INTO {target} ({all_names}) VALUES ({marks})"


def stage_postgres(
    dsn: str, table: str, stream: Stream, *, replace: bool, chunk: int, progress: Progress | None
) -> int:
    """The same into PostgreSQL (COPY per chunk, one transaction); returns the row count."""
    try:
        conn = psycopg2.connect(dsn)
    except psycopg2.OperationalError as exc:
        raise TransientError(f"cannot connect to the PostgreSQL destination: {exc}") from None
    target = sql.Identifier(table)
    try:
        with conn, conn.cursor() as cur:
            if replace:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            created, rows = 0, 0
            for batch in _chunks(stream, chunk):
                created = _pg_columns(cur, target, stream, created)
                _check_nul(stream.columns.names, batch, rows)
                copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    target,
                    sql.SQL(", ").join(map(sql.Identifier, [ROW_COLUMN, *stream.columns.names])),
                )
                cur.copy_expert(
                    copy.as_string(conn), _CopyReader(batch, rows, created), size=1 << 20
                )
                rows += len(batch)
                if progress:
                    progress(rows, stream.bytes_read())
            _pg_columns(cur, target, stream, created)
    except psycopg2.errors.DuplicateTable:
        raise StagingError(f"table {table!r} already exists (use replace to overwrite)") from None
    except psycopg2.Error as exc:
        raise StagingError(f"staging into PostgreSQL failed: {exc}".strip()) from None
    finally:
        conn.close()
    return rows


def _pg_columns(cur, target: sql.Identifier, stream: Stream, created: int) -> int:
    names = stream.columns.names
    for position, name in enumerate(names[created:], start=created + 1):
        if len(name.encode("utf-8")) > 63 or "\x00" in name:
            raise StagingError(
                f"header column {position} {name[:30]!r}: PostgreSQL column "
                "names must be at most 63 bytes without NUL",
                column=name,
            )
    if not created:
        cur.execute(
            sql.SQL("CREATE TABLE {} ({} integer PRIMARY KEY{})").format(
                target,
                sql.Identifier(ROW_COLUMN),
                sql.SQL("").join(sql.SQL(", {} text").format(sql.Identifier(c)) for c in names),
            )
        )
    else:
        for name in names[created:]:
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} text").format(target, sql.Identifier(name))
            )
    return len(names)


def _check_nul(names: list[str], batch: list[Row], before: int) -> None:
    """PostgreSQL text cannot store NUL: refuse it (naming row and column), never drop it."""
    for n, row in enumerate(batch, start=before + 1):
        for name, value in zip(names, row, strict=False):
            if value is not None and "\x00" in value:
                raise StagingError(
                    f"row {n} column {name!r}: contains a NUL character, "
                    "which PostgreSQL text cannot store",
                    row=n,
                    column=name,
                )


class _CopyReader:
    """File-like source for COPY FROM STDIN (text format), 2,000 rows per read."""

    def __init__(self, rows: list[Row], before: int, width: int, chunk: int = 2000) -> None:
        self._chunks = self._generate(rows, before, width, chunk)

    @staticmethod
    def _generate(rows: list[Row], before: int, width: int, chunk: int) -> Iterator[str]:
        for first in range(0, len(rows), chunk):
            lines = [
                "\t".join(
                    [
                        str(n),
                        *(
                            "\\N" if v is None else v.translate(_COPY_ESCAPE)
                            for v in [*row, *[None] * (width - len(row))]
                        ),
                    ]
                )
                for n, row in enumerate(rows[first : first + chunk], start=before + first + 1)
            ]
            yield "\n".join(lines) + "\n"

    def read(self, size: int = -1) -> str:
        return next(self._chunks, "")

    def readline(self, size: int = -1) -> str:
        return self.read(size)
