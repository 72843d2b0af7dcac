"""JSON files: an array of objects (read record by record from a sliding buffer), one object,
or JSON Lines. A record may be at most MAX_RECORD_CHARS long; nesting too deep is refused."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from runs.engine.errors import StagingError

from .records import MAX_RECORD_CHARS, Columns, Row, Stream
from .text import CHUNK, Encoding, TextReader

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_float=Decimal)
_SURE = 64 * 1024  # a syntax error with this much text after it is not a cut-off record


def json_stream(path: Path, found: Encoding) -> Stream:
    """Open a JSON file for reading; records become rows as the stream is consumed."""
    reader = TextReader(path, found)
    columns = Columns("key")
    state = {"reader": reader}

    def bytes_read() -> int:
        return state["reader"].bytes_read()

    def close() -> None:
        state["reader"].close()

    return Stream(
        "json", found.name, None, columns, _rows(path, found, state, columns), bytes_read, close
    )


def _rows(path: Path, found: Encoding, state: dict, columns: Columns) -> Iterator[Row]:
    try:
        for n, line, value in _values(path, found, state):
            if not isinstance(value, dict):
                where = f"record {n}" + (f" (line {line})" if line else "")
                raise StagingError(
                    f"{where}: expected an object, got {type(value).__name__}", row=n
                )
            yield columns.row({key: _json_text(item) for key, item in value.items()})
    except RecursionError:
        raise StagingError("the JSON nests objects or arrays too deeply to read") from None
    if not len(columns):
        raise StagingError("the json file has no fields in any record")


def _values(path: Path, found: Encoding, state: dict) -> Iterator[tuple[int, int | None, Any]]:
    buffer = _Buffer(state["reader"])
    start = buffer.skip_ws(0)
    if buffer.char(start) == "[":
        yield from _array(buffer, start + 1)
        return
    single = _single(buffer, start)
    if single is not None:
        yield 1, 1, single
        return
    state["reader"].close()
    state["reader"] = TextReader(path, found)  # JSON Lines (or broken): line by line
    yield from _lines(state["reader"])


class _Buffer:
    """A window on the decoded text: ``text`` starts at character ``base`` of the file."""

    def __init__(self, reader: TextReader) -> None:
        self.reader = reader
        self.text = reader.read(CHUNK)
        self.base = 0
        self.lines = 0  # newlines before the window
        self.column = 0  # characters of the window's first line before the window
        self.eof = False

    def more(self, keep: int) -> bool:
        """Drop the text before ``keep`` and read another chunk; False at the end of the file
        (the window is then unchanged)."""
        chunk = "" if self.eof else self.reader.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        last = self.text.rfind("\n", 0, keep)
        self.column = keep - last - 1 if last >= 0 else self.column + keep
        self.lines += self.text.count("\n", 0, keep)
        self.base += keep
        self.text = self.text[keep:] + chunk
        return True

    def skip_ws(self, pos: int) -> int:
        """Position of the next non-blank character, or the end of the text."""
        while True:
            pos = _WS.match(self.text, pos).end()
            if pos < len(self.text) or not self.more(pos):
                return pos
            pos = 0

    def char(self, pos: int) -> str:
        return self.text[pos] if pos < len(self.text) else ""

    def decode(self, pos: int, n: int) -> tuple[Any, int]:
        """The JSON value at ``pos`` and the position after it; reads on while it is cut off."""
        while True:
            try:
                return _DECODER.raw_decode(self.text, pos)
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or exc.pos + _SURE > len(self.text)
                if len(self.text) - pos > MAX_RECORD_CHARS:
                    raise StagingError(
                        f"record {n} is longer than {MAX_RECORD_CHARS:,} characters", row=n
                    ) from None
                if not cut or not self.more(pos):
                    raise self.error(exc.pos, exc.msg) from None
                pos = 0

    def error(self, pos: int, msg: str) -> StagingError:
        """A syntax error at window position ``pos``, named by line, column and byte."""
        line = self.lines + self.text.count("\n", 0, pos) + 1
        last = self.text.rfind("\n", 0, pos)
        column = pos - last if last >= 0 else self.column + pos + 1
        byte = self.reader.byte_at(self.base + pos)
        return StagingError(f"line {line} column {column} (byte {byte}): {msg}", byte=byte)


def _array(buffer: _Buffer, pos: int) -> Iterator[tuple[int, None, Any]]:
    n = 0
    pos = buffer.skip_ws(pos)
    if buffer.char(pos) == "]":
        pos += 1
    else:
        while True:
            n += 1
            value, pos = buffer.decode(pos, n)
            yield n, None, value
            pos = buffer.skip_ws(pos)
            if buffer.char(pos) == ",":
                pos = buffer.skip_ws(pos + 1)
                continue
            if buffer.char(pos) == "]":
                pos += 1
                break
            raise buffer.error(pos, "Expecting ',' delimiter")
    pos = buffer.skip_ws(pos)
    if pos < len(buffer.text):
        raise buffer.error(pos, "Extra data")


def _single(buffer: _Buffer, pos: int) -> dict | None:
    """A whole file holding one (possibly pretty-printed) object is one record."""
    try:
        value, end = buffer.decode(pos, 1)
    except StagingError:
        return None
    if not isinstance(value, dict) or buffer.skip_ws(end) < len(buffer.text):
        return None
    return value


def _lines(reader: TextReader) -> Iterator[tuple[int, int, Any]]:
    line_no, n, offset = 0, 0, 0
    while line := reader.readline(MAX_RECORD_CHARS):
        line_no += 1
        if len(line) == MAX_RECORD_CHARS and not line.endswith("\n"):
            raise StagingError(
                f"line {line_no} is longer than {MAX_RECORD_CHARS:,} characters", row=n + 1
            )
        body = line.rstrip("\n")
        if body.strip():
            n += 1
            try:
                value = _DECODER.decode(body)
            except json.JSONDecodeError as exc:
                byte = reader.byte_at(offset + exc.pos)
                raise StagingError(
                    f"line {line_no} column {exc.colno} (byte {byte}): {exc.msg}", byte=byte
                ) from None
            yield n, line_no, value
        offset += len(line)


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=float)  # nested: its JSON text
