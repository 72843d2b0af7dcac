"""Staging of uploaded files (CSV, JSON, XLSX, XML) into a table of text columns.

Every value is text (``str``) or ``None``: empty CSV/XLSX cells and JSON ``null`` become
``None``. Rows are numbered 1.. over data records (the header and blank lines/rows are not
counted); that number is the staged ``_row`` column, the source key for extraction.
The uploaded file is only ever opened for reading.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
import sqlite3
import xml.etree.ElementTree as ET  # noqa: S405 -- only ParseError/tostring; parsing is defused
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import charset_normalizer
import openpyxl
import pandas as pd
import psycopg2
from charset_normalizer.md import mess_ratio
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from psycopg2 import sql

from runs.engine.errors import StagingError, TransientError
from runs.engine.file_guard import xlsx_check

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
_DELIMITERS = ",;|\t"
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_ROW_COLUMN = "_row"
_WESTERN = ("cp1252", "latin_1")  # preferred among equally plausible single-byte guesses
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_BINARY_PROBE = 64 * 1024  # over 5% control characters here: a binary file, not text
_CONTROL = bytes([*range(0, 9), 11, *range(14, 27), *range(28, 32)])
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

Row = list[str | None]


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
    """Outcome of ``stage_file``: the table written and what was read into it."""

    table: str
    rows: int
    columns: list[str]
    format: str
    encoding: str | None
    delimiter: str | None


@dataclass
class _Parsed:
    format: str
    encoding: str | None
    delimiter: str | None
    columns: list[str]
    rows: list[Row]


@dataclass
class _Decoded:
    text: str
    name: str  # the encoding reported to the user
    codec: str  # the codec used, to turn a character index back into a byte offset
    skip: int  # bytes dropped before decoding (a UTF-8 byte order mark)

    def byte_at(self, index: int) -> int:
        return self.skip + len(self.text[:index].encode(self.codec))


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
    """Read the whole file and describe it (format, encoding, delimiter, columns, first rows,
    row count); read-only; raises StagingError naming where and why a bad file fails."""
    parsed = _parse(path, fmt=fmt, encoding=encoding, delimiter=delimiter, sheet=sheet)
    preview = [dict(zip(parsed.columns, row, strict=True)) for row in parsed.rows[:preview_rows]]
    return FileProfile(
        parsed.format,
        parsed.encoding,
        parsed.delimiter,
        list(parsed.columns),
        preview,
        len(parsed.rows),
    )


def read_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
) -> pd.DataFrame:
    """Read the whole file into an all-text (object dtype, str/None) DataFrame; read-only;
    raises StagingError naming where and why a bad file fails."""
    parsed = _parse(path, fmt=fmt, encoding=encoding, delimiter=delimiter, sheet=sheet)
    return pd.DataFrame(parsed.rows, columns=parsed.columns, dtype=object)


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
) -> StagingReport:
    """Parse the whole file, then create ``table`` (``_row`` + one TEXT column per file column)
    in ``dest`` and load it in ONE transaction (all-or-nothing; not idempotent unless
    ``replace``); never modifies the file; raises StagingError (TransientError if the
    destination cannot be reached)."""
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise StagingError(
            f"invalid table name {table!r}: use letters, digits and _ "
            "(not starting with a digit), at most 63 characters"
        )
    parsed = _parse(path, fmt=fmt, encoding=encoding, delimiter=delimiter, sheet=sheet)
    if dest.startswith(("postgresql://", "postgres://")):
        _stage_postgres(dest, table, parsed, replace=replace)
    else:
        _stage_sqlite(_sqlite_path(dest), table, parsed, replace=replace)
    return StagingReport(
        table,
        len(parsed.rows),
        list(parsed.columns),
        parsed.format,
        parsed.encoding,
        parsed.delimiter,
    )


# --------------------------------------------------------------------------- shared helpers


def _parse(
    path: str | Path,
    *,
    fmt: str | None,
    encoding: str | None,
    delimiter: str | None,
    sheet: str | None,
) -> _Parsed:
    path = Path(path)
    fmt = _resolve_format(path, fmt)
    if not path.is_file():
        raise StagingError(f"file not found: {path.name}")
    if path.stat().st_size == 0:
        raise StagingError("the file is empty (0 bytes)")
    if fmt == "xlsx":
        return _parse_xlsx(path, sheet)
    raw = path.read_bytes()
    if not raw.strip() or raw == codecs.BOM_UTF8:
        raise StagingError("the file is empty (only whitespace)")
    if fmt == "csv":
        return _parse_csv(raw, encoding, delimiter)
    if fmt == "json":
        return _parse_json(raw, encoding)
    return _parse_xml(raw, encoding)


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


def _check_columns(names: list[Any], label: str = "header column") -> list[str]:
    """Strip names; reject empty, reserved and (case-insensitively) duplicate ones."""
    columns: list[str] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(names, start=1):
        name = "" if raw is None else str(raw).strip()
        if not name:
            raise StagingError(f"{label} {position} has an empty name", column=str(position))
        key = name.casefold()
        if key == _ROW_COLUMN:
            raise StagingError(
                f"{label} {position} is named {name!r}, which is reserved for the row number",
                column=name,
            )
        if key in seen:
            raise StagingError(
                f"{label} {position} {name!r} duplicates column {seen[key]} "
                "(names are compared ignoring case)",
                column=name,
            )
        seen[key] = position
        columns.append(name)
    return columns


def _records_to_table(
    records: list[dict[str, str | None]], fmt: str, label: str
) -> tuple[list[str], list[Row]]:
    """Columns are the union of record keys in order of first appearance; missing is None."""
    index: dict[str, int] = {}
    for record in records:
        for key in record:
            index.setdefault(key, len(index))
    if not index:
        raise StagingError(f"the {fmt} file has no fields in any record")
    columns = _check_columns(list(index), label)
    rows: list[Row] = []
    for record in records:
        row: Row = [None] * len(index)
        for key, value in record.items():
            row[index[key]] = value
        rows.append(row)
    return columns, rows


# --------------------------------------------------------------------------- text decoding


def _decode(raw: bytes, encoding: str | None) -> _Decoded:
    """Decode with the chosen encoding, else a UTF-8 BOM, UTF-8, or charset-normalizer's guess."""
    wide = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (encoding or "").lower(
    ).replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))
    if not wide and _looks_binary(raw[:_BINARY_PROBE]):
        raise StagingError(
            "this looks like a binary file, not text (CSV, JSON or XML): "
            f"{_control_share(raw[:_BINARY_PROBE]):.0%} of its first bytes are control "
            "characters")
    name = encoding or _detect_encoding(raw)
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise StagingError(f"unknown encoding {name!r}") from None
    skip = 0
    if codec in ("utf-8", "utf-8-sig") and raw.startswith(codecs.BOM_UTF8):
        codec, skip, name = "utf-8", len(codecs.BOM_UTF8), encoding or "utf-8-sig"
    try:
        text = raw[skip:].decode(codec)
    except UnicodeDecodeError as exc:
        raise _decode_error(raw, skip + exc.start, name) from None
    if text.startswith("\ufeff"):  # a BOM the codec keeps (e.g. utf-16-le chosen explicitly)
        text = text[1:]
    return _Decoded(text, name, codec, skip)


def _control_share(sample: bytes) -> float:
    return (len(sample) - len(sample.translate(None, _CONTROL))) / max(1, len(sample))


def _looks_binary(sample: bytes) -> bool:
    """Random or binary data (an image, an archive) rather than text with a stray byte."""
    return len(sample) >= 64 and _control_share(sample) > 0.05


def decode_text(raw: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding used) as file staging decodes: a chosen encoding, else a UTF-8 BOM,
    UTF-8, or the detected Western / charset-normalizer encoding. Pure; raises StagingError
    naming the byte and line that cannot be decoded."""
    decoded = _decode(raw, encoding)
    return decoded.text, decoded.name


def _decode_error(raw: bytes, byte: int, name: str) -> StagingError:
    line = raw.count(b"\n", 0, byte) + 1
    return StagingError(
        f"byte {byte} (line {line}): cannot decode 0x{raw[byte]:02x} as {name}", byte=byte
    )


def _detect_encoding(raw: bytes) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if max(raw[: exc.start], default=0) >= 0x80:
            # valid multi-byte UTF-8 before the bad byte: a damaged UTF-8 file, not another
            # encoding; guessing would silently garble every other accented character
            raise _decode_error(raw, exc.start, "utf-8") from None
    best = charset_normalizer.from_bytes(raw).best()
    # charset-normalizer alone misjudges small Western files (even as CJK): score its guess
    # against the common Western codecs by mess ratio, preferring the Western ones on a tie
    candidates = [
        name
        for name in (*_WESTERN, best.encoding if best else None)
        if name and _decodes(raw, name)
    ]
    if not candidates:
        raise StagingError("cannot detect the text encoding: choose one")
    sample = raw[:200_000]
    return min(candidates, key=lambda name: mess_ratio(sample.decode(name, errors="ignore"), 1.0))


def _decodes(raw: bytes, codec: str) -> bool:
    try:
        raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------- CSV


class _LineReader:
    """Feeds csv.reader line by line and knows the character offset of the next unread line."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text, newline="")
        self.offset = 0

    def __iter__(self) -> _LineReader:
        return self

    def __next__(self) -> str:
        line = self._lines.readline()
        if not line:
            raise StopIteration
        self.offset += len(line)
        return line


def _parse_csv(raw: bytes, encoding: str | None, delimiter: str | None) -> _Parsed:
    decoded = _decode(raw, encoding)
    delim = _check_delimiter(delimiter) if delimiter else _sniff_delimiter(decoded.text)
    lines = _LineReader(decoded.text)
    reader = csv.reader(lines, delimiter=delim, strict=True)
    header: list[str] | None = None
    rows: list[Row] = []
    while True:
        start = lines.offset
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_error(decoded, len(rows) + 1, start, str(exc)) from None
        if not record:
            continue  # a blank line
        if header is None:
            header = _check_columns(record)
        elif len(record) != len(header):
            why = f"{len(record)} fields, header has {len(header)}"
            raise _csv_error(decoded, len(rows) + 1, start, why)
        else:
            rows.append([value or None for value in record])
    if header is None:
        raise StagingError("the file is empty (no header line)")
    return _Parsed("csv", decoded.name, delim, header, rows)


def _csv_error(decoded: _Decoded, row: int, start: int, why: str) -> StagingError:
    byte = decoded.byte_at(start)
    return StagingError(f"row {row} (byte {byte}): {why}", row=row, byte=byte)


def _check_delimiter(delimiter: str) -> str:
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise StagingError(f"invalid delimiter {delimiter!r}: use one character")
    return delimiter


def _sniff_delimiter(text: str) -> str:
    sample = text[:65536]
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


# --------------------------------------------------------------------------- JSON


def _parse_json(raw: bytes, encoding: str | None) -> _Parsed:
    try:
        return _parse_json_text(raw, encoding)
    except RecursionError:
        raise StagingError("the JSON nests objects or arrays too deeply to read") from None


def _parse_json_text(raw: bytes, encoding: str | None) -> _Parsed:
    decoded = _decode(raw, encoding)
    text = decoded.text
    if text.lstrip().startswith("["):
        loaded = _json_load(decoded, text, 0)  # starts with "[": a list, or a syntax error
        values = [(n, None, value) for n, value in enumerate(loaded, start=1)]
    else:
        values = _json_single(text) or _json_lines(decoded)
    records = []
    for n, line, value in values:
        if not isinstance(value, dict):
            where = f"record {n}" + (f" (line {line})" if line else "")
            raise StagingError(f"{where}: expected an object, got {type(value).__name__}", row=n)
        records.append({key: _json_text(item) for key, item in value.items()})
    columns, rows = _records_to_table(records, "json", "key")
    return _Parsed("json", decoded.name, None, columns, rows)


def _json_load(decoded: _Decoded, text: str, base: int) -> Any:
    """json.loads with a StagingError naming line, column and byte on a syntax error."""
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        line = decoded.text.count("\n", 0, base + exc.pos) + 1
        byte = decoded.byte_at(base + exc.pos)
        raise StagingError(
            f"line {line} column {exc.colno} (byte {byte}): {exc.msg}", byte=byte
        ) from None


def _json_single(text: str) -> list[tuple[int, int, Any]]:
    """A whole file holding one (possibly pretty-printed) object is one record."""
    try:
        value = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        return []  # JSON Lines (or broken): parsed line by line for a precise position
    return [(1, 1, value)] if isinstance(value, dict) else []


def _json_lines(decoded: _Decoded) -> list[tuple[int, int, Any]]:
    values: list[tuple[int, int, Any]] = []
    offset = 0
    for line_no, line in enumerate(decoded.text.split("\n"), start=1):
        if line.strip():
            values.append((len(values) + 1, line_no, _json_load(decoded, line, offset)))
        offset += len(line) + 1
    return values


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=float)  # nested: its JSON text


# --------------------------------------------------------------------------- XML


def _parse_xml(raw: bytes, encoding: str | None) -> _Parsed:
    declared = _XML_DECL.match(raw)
    source: str | bytes
    if encoding is None and (declared or raw.startswith(codecs.BOM_UTF8)):
        source = raw  # let the parser honour the declaration / BOM
        name = declared.group(1).decode("ascii") if declared else "utf-8-sig"
    else:
        decoded = _decode(raw, encoding)
        source = re.sub(r"^\s*<\?xml[^>]*\?>", "", decoded.text, count=1)
        name = decoded.name
    root = _xml_root(raw, source)
    children = list(root)
    if not children:
        raise StagingError(f"the root element <{_local(root.tag)}> has no record elements")
    first = children[0].tag
    records = []
    for n, element in enumerate(children, start=1):
        if element.tag != first:
            raise StagingError(
                f"record {n}: element <{_local(element.tag)}> differs from the "
                f"first record's <{_local(first)}>",
                row=n,
            )
        records.append(_xml_record(element, n))
    columns, rows = _records_to_table(records, "xml", "field")
    return _Parsed("xml", name, None, columns, rows)


def _xml_root(raw: bytes, source: str | bytes) -> ET.Element:
    """Parse with DTDs forbidden: no entity expansion ("billion laughs"), no external fetch."""
    try:
        return SafeET.fromstring(source, forbid_dtd=True)
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).rsplit(": line", 1)[0]
        raise StagingError(f"line {line} column {column + 1}: {reason}", row=None) from None
    except DefusedXmlException:
        line = raw.count(b"\n", 0, max(raw.find(b"<!DOCTYPE"), 0)) + 1
        raise StagingError(
            f"line {line}: DOCTYPE/ENTITY declarations are not allowed "
            "(protection against entity expansion)"
        ) from None


def _xml_record(element: ET.Element, n: int) -> dict[str, str | None]:
    record: dict[str, str | None] = {_local(k): v for k, v in element.attrib.items()}
    for child in element:
        name = _local(child.tag)
        if name in record:
            raise StagingError(
                f"record {n}: <{name}> appears more than once (or is also an attribute)",
                row=n,
                column=name,
            )
        if len(child):  # nested elements: keep the inner XML text
            inner = "".join(ET.tostring(c, encoding="unicode") for c in child)
            record[name] = (child.text or "") + inner
        else:
            record[name] = child.text or None
    return record


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --------------------------------------------------------------------------- XLSX


def _parse_xlsx(path: Path, sheet: str | None) -> _Parsed:
    xlsx_check(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except zipfile.BadZipFile:
        raise StagingError("not an XLSX workbook: the file is not a zip archive") from None
    except (KeyError, ValueError, OSError, openpyxl.utils.exceptions.InvalidFileException) as e:
        raise StagingError(f"not a readable XLSX workbook: {e}") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise StagingError(
                f"no sheet named {sheet!r}; the workbook has "
                f"{', '.join(map(repr, book.sheetnames))}"
            )
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        columns, rows = _xlsx_rows(worksheet.iter_rows(values_only=True), worksheet.title)
    finally:
        book.close()
    return _Parsed("xlsx", None, None, columns, rows)


def _xlsx_rows(cells: Iterator[tuple[Any, ...]], title: str) -> tuple[list[str], list[Row]]:
    header = next(cells, None)
    while header is not None and header and header[-1] is None:
        header = header[:-1]
    if not header:
        raise StagingError(f"sheet {title!r} is empty (no header row)")
    columns = _check_columns(list(header))
    width = len(columns)
    rows: list[Row] = []
    for sheet_row, values in enumerate(cells, start=2):
        row = [_cell_text(v) for v in values]
        if all(v is None for v in row):
            continue  # a blank row
        extra = [i for i, v in enumerate(row[width:], start=width + 1) if v is not None]
        if extra:
            n = len(rows) + 1
            raise StagingError(
                f"row {n} (sheet {title!r} row {sheet_row}): a value in column "
                f"{extra[0]}, beyond the {width} header columns",
                row=n,
            )
        rows.append((row + [None] * width)[:width])
    return columns, rows


def _cell_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- destinations


def _sqlite_path(dest: str) -> str:
    return dest[len("sqlite://") :] if dest.startswith("sqlite://") else dest


def _sqlite_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stage_sqlite(path: str, table: str, parsed: _Parsed, *, replace: bool) -> None:
    names = [_sqlite_quote(c) for c in [_ROW_COLUMN, *parsed.columns]]
    target = _sqlite_quote(table)
    create = f"CREATE TABLE {target} ({names[0]} INTEGER PRIMARY KEY, "
    create += ", ".join(f"{n} TEXT" for n in names[1:]) + ")"
    insert = f"INSERT INTO {target} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
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
            conn.execute(create)
            conn.executemany(insert, ((n, *row) for n, row in enumerate(parsed.rows, 1)))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StagingError(f"staging into SQLite failed: {exc}") from None
    finally:
        conn.close()


def _stage_postgres(dsn: str, table: str, parsed: _Parsed, *, replace: bool) -> None:
    _check_postgres_limits(parsed)
    target = sql.Identifier(table)
    columns = sql.SQL(", ").join(map(sql.Identifier, [_ROW_COLUMN, *parsed.columns]))
    create = sql.SQL("CREATE TABLE {} ({} integer PRIMARY KEY, {})").format(
        target,
        sql.Identifier(_ROW_COLUMN),
        sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in parsed.columns),
    )
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)
    try:
        conn = psycopg2.connect(dsn)
    except psycopg2.OperationalError as exc:
        raise TransientError(f"cannot connect to the PostgreSQL destination: {exc}") from None
    try:
        with conn, conn.cursor() as cur:
            if replace:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            cur.execute(create)
            cur.copy_expert(copy.as_string(conn), _CopyReader(parsed.rows), size=1 << 20)
    except psycopg2.errors.DuplicateTable:
        raise StagingError(f"table {table!r} already exists (use replace to overwrite)") from None
    except psycopg2.Error as exc:
        raise StagingError(f"staging into PostgreSQL failed: {exc}".strip()) from None
    finally:
        conn.close()


def _check_postgres_limits(parsed: _Parsed) -> None:
    """Reject what PostgreSQL would refuse or silently alter: long names, NUL characters."""
    for position, name in enumerate(parsed.columns, start=1):
        if len(name.encode("utf-8")) > 63 or "\x00" in name:
            raise StagingError(
                f"header column {position} {name[:30]!r}: PostgreSQL column "
                "names must be at most 63 bytes without NUL",
                column=name,
            )
    for n, row in enumerate(parsed.rows, start=1):
        for name, value in zip(parsed.columns, row, strict=True):
            if value is not None and "\x00" in value:
                raise StagingError(
                    f"row {n} column {name!r}: contains a NUL character, "
                    "which PostgreSQL text cannot store",
                    row=n,
                    column=name,
                )


class _CopyReader:
    """File-like source for COPY FROM STDIN (text format), produced a chunk of rows at a time."""

    def __init__(self, rows: list[Row], chunk: int = 2000) -> None:
        self._chunks = self._generate(rows, chunk)

    @staticmethod
    def _generate(rows: list[Row], chunk: int) -> Iterator[str]:
        for first in range(0, len(rows), chunk):
            lines = [
                "\t".join(
                    [str(n), *("\\N" if v is None else v.translate(_COPY_ESCAPE) for v in row)]
                )
                for n, row in enumerate(rows[first : first + chunk], start=first + 1)
            ]
            yield "\n".join(lines) + "\n"

    def read(self, size: int = -1) -> str:
        return next(self._chunks, "")

    def readline(self, size: int = -1) -> str:
        return self.read(size)
