"""Staging of uploaded files (CSV, JSON, XLSX, XML) into a table of text columns.

Every value is text (``str``) or ``None``: empty CSV/XLSX cells and JSON ``null`` become
``None``. Rows are numbered 1.. over data records (the header and blank lines/rows are not
counted); that number is the staged ``_row`` column, the source key for extraction.
Files are read as streams (256 KB of text, one record, one chunk of rows at a time), so memory
stays bounded whatever the file's size. The uploaded file is only ever opened for reading.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from runs.engine.errors import StagingError

from .delimited import csv_stream
from .dest import stage_postgres, stage_sqlite
from .jsonfile import json_stream
from .records import Stream
from .text import BINARY_PROBE, decode_text, encoding_resolve, file_chunks
from .xlsxfile import xlsx_stream
from .xmlfile import xml_stream

__all__ = [
    "FORMATS",
    "FileProfile",
    "StagingReport",
    "decode_text",
    "read_file",
    "sniff_file",
    "stage_file",
]

FORMATS = ("csv", "json", "xlsx", "xml")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".xlsx": "xlsx",
    ".xml": "xml",
}
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
CHUNK_ROWS = 5000


@dataclass
class FileProfile:
    """What the user sees before staging."""

    format: str
    encoding: str | None
    delimiter: str | None
    columns: list[str]
    preview: list[dict[str, str | None]]
    row_count: int | None


@dataclass(frozen=True)
class StagingReport:
    """Outcome of ``stage_file``: the table written, what was read into it, its first rows."""

    table: str
    rows: int
    columns: list[str]
    format: str
    encoding: str | None
    delimiter: str | None
    preview: list[dict[str, str | None]] = field(default_factory=list)


# --------------------------------------------------------------------------- public API


def sniff_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    preview_rows: int = 20,
) -> FileProfile:
    """Read the whole file (streamed) and describe it (format, encoding, delimiter, columns,
    first rows, row count); read-only; raises StagingError naming where and why a bad file
    fails."""
    stream = open_stream(path, fmt=fmt, encoding=encoding, delimiter=delimiter, sheet=sheet)
    try:
        first, count = [], 0
        for row in stream.rows:
            count += 1
            if count <= preview_rows:
                first.append(row)
        names = list(stream.columns.names)
    finally:
        stream.close()
    preview = [dict(zip(names, _pad(row, len(names)), strict=True)) for row in first]
    return FileProfile(stream.format, stream.encoding, stream.delimiter, names, preview, count)


def read_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
) -> pd.DataFrame:
    """Read the whole file into an all-text (object dtype, str/None) DataFrame (in memory:
    for small files and tests); read-only; raises StagingError naming where and why a bad
    file fails."""
    stream = open_stream(path, fmt=fmt, encoding=encoding, delimiter=delimiter, sheet=sheet)
    try:
        rows = list(stream.rows)
    finally:
        stream.close()
    names = stream.columns.names
    return pd.DataFrame([_pad(r, len(names)) for r in rows], columns=names, dtype=object)


def stage_file(
    path: str | Path,
    *,
    dest: str,
    table: str,
    fmt: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    replace: bool = False,
    preview_rows: int = 0,
    progress: Callable[[int, int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> StagingReport:
    """Read the file as a stream and create ``table`` (``_row`` + one TEXT column per file
    column) in ``dest``, ``chunk_rows`` rows at a time, in ONE transaction (all-or-nothing;
    not idempotent unless ``replace``); ``progress(rows, bytes_read)`` after each chunk;
    never modifies the file; raises StagingError (TransientError if the destination cannot
    be reached)."""
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise StagingError(
            f"invalid table name {table!r}: use letters, digits and _ "
            "(not starting with a digit), at most 63 characters"
        )
    stream = open_stream(path, fmt=fmt, encoding=encoding, delimiter=delimiter, sheet=sheet)
    first: list = []
    if preview_rows:
        stream.rows = _keeping(stream.rows, first, preview_rows)
    try:
        if dest.startswith(("postgresql://", "postgres://")):
            rows = stage_postgres(
                dest, table, stream, replace=replace, chunk=chunk_rows, progress=progress
            )
        else:
            path_ = dest[len("sqlite://") :] if dest.startswith("sqlite://") else dest
            rows = stage_sqlite(
                path_, table, stream, replace=replace, chunk=chunk_rows, progress=progress
            )
    finally:
        stream.close()
    names = list(stream.columns.names)
    preview = [dict(zip(names, _pad(row, len(names)), strict=True)) for row in first]
    return StagingReport(
        table, rows, names, stream.format, stream.encoding, stream.delimiter, preview
    )


def _keeping(rows, kept: list, limit: int):
    for row in rows:
        if len(kept) < limit:
            kept.append(row)
        yield row


def _pad(row: list, width: int) -> list:
    return row + [None] * (width - len(row))


# --------------------------------------------------------------------------- opening


def open_stream(
    path: str | Path,
    *,
    fmt: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
) -> Stream:
    """Open the file for reading as rows; checks (format, empty, binary, encoding, XLSX
    bombs) run now, row-level problems as the rows are read. Raises StagingError."""
    path = Path(path)
    fmt = _resolve_format(path, fmt)
    if not path.is_file():
        raise StagingError(f"file not found: {path.name}")
    if path.stat().st_size == 0:
        raise StagingError("the file is empty (0 bytes)")
    if fmt == "xlsx":
        return xlsx_stream(path, sheet)
    with path.open("rb") as handle:
        head = handle.read(BINARY_PROBE)
    if _blank(path):
        raise StagingError("the file is empty (only whitespace)")
    if fmt == "xml":
        return xml_stream(path, head, encoding)
    found = encoding_resolve(file_chunks(path), head, encoding)
    if fmt == "csv":
        return csv_stream(path, found, delimiter)
    return json_stream(path, found)


def _blank(path: Path) -> bool:
    """Only whitespace (or a lone UTF-8 BOM): stops at the first byte that is not blank."""
    first = True
    for chunk in file_chunks(path)():
        if first and chunk.startswith(codecs.BOM_UTF8):
            chunk = chunk[len(codecs.BOM_UTF8) :]
        first = False
        if chunk.strip():
            return False
    return True


def _resolve_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise StagingError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise StagingError(
            f"cannot tell the format of {path.name!r} from its extension: "
            f"choose one of {', '.join(FORMATS)}"
        )
    return found
