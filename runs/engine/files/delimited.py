"""CSV (and TSV/TXT) files, read line by line from a decoded text stream."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from runs.engine.errors import StagingError

from .records import MAX_RECORD_CHARS, Columns, Row, Stream
from .text import Encoding, TextReader

_DELIMITERS = ",;|\t"
_SNIFF_CHARS = 65536


def csv_stream(path: Path, found: Encoding, delimiter: str | None) -> Stream:
    """Open a CSV file for reading: the delimiter is the given one or sniffed from the first
    64 K characters; rows are read as the stream is consumed."""
    if delimiter:
        delim = _check_delimiter(delimiter)
    else:
        probe = TextReader(path, found)
        try:
            delim = _sniff_delimiter(probe.read(_SNIFF_CHARS + 1))
        finally:
            probe.close()
    reader = TextReader(path, found)
    columns = Columns("header column")
    return Stream(
        "csv",
        found.name,
        delim,
        columns,
        _rows(reader, delim, columns),
        reader.bytes_read,
        reader.close,
    )


class _Lines:
    """Feeds csv.reader line by line and knows the character offset of the next unread line."""

    def __init__(self, reader: TextReader) -> None:
        self._reader = reader
        self.offset = 0
        self.lines = 0  # physical lines read so far (a quoted value may span several)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._reader.readline(MAX_RECORD_CHARS)
        if not line:
            raise StopIteration
        if len(line) == MAX_RECORD_CHARS and not line.endswith(("\n", "\r")):
            byte = self._reader.byte_at(self.offset)
            raise StagingError(
                f"line at byte {byte} is longer than {MAX_RECORD_CHARS:,} characters", byte=byte
            )
        self.offset += len(line)
        self.lines += 1
        return line


def _rows(reader: TextReader, delim: str, columns: Columns) -> Iterator[Row]:
    lines = _Lines(reader)
    records = csv.reader(lines, delimiter=delim, strict=True)
    width: int | None = None
    count = 0
    while True:
        start, line = lines.offset, lines.lines + 1
        try:
            record = next(records)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_error(reader, count + 1, line, start, str(exc)) from None
        if not record:
            continue  # a blank line
        if width is None:
            for name in record:
                columns.index(name)
            width = len(record)
        elif len(record) != width:
            why = f"{len(record)} fields, header has {width}"
            raise _csv_error(reader, count + 1, line, start, why)
        else:
            count += 1
            yield [value or None for value in record]
    if width is None:
        raise StagingError("the file is empty (no header line)")


def _csv_error(reader: TextReader, row: int, line: int, start: int, why: str) -> StagingError:
    """The error of data row ``row``, which starts on file line ``line`` at character ``start``."""
    byte = reader.byte_at(start)
    return StagingError(f"line {line} (data row {row}), byte {byte}: {why}", row=row, byte=byte)


def _check_delimiter(delimiter: str) -> str:
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise StagingError(f"invalid delimiter {delimiter!r}: use one character")
    return delimiter


def _sniff_delimiter(text: str) -> str:
    sample = text[:_SNIFF_CHARS]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    first_line = sample.split("\n", 1)[0]
    try:
        found = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
        if found in first_line:
            return found
    except csv.Error:
        pass
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
