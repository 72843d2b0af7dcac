"""XLSX workbooks: checked before opening (guard.xlsx_check), then read row by row
(openpyxl's read-only mode; its XML parsing goes through defusedxml)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET  # noqa: S405 -- only ParseError; parsing is defused
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
from defusedxml import DefusedXmlException

from runs.engine.errors import StagingError

from .guard import xlsx_check
from .records import Columns, Row, Stream


def xlsx_stream(path: Path, sheet: str | None) -> Stream:
    """Open a workbook's sheet (the first unless named) for reading; refuses a zip bomb, a
    sheet declaring too many cells and oversized shared strings before openpyxl reads it."""
    xlsx_check(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except zipfile.BadZipFile:
        raise StagingError("not an XLSX workbook: the file is not a zip archive") from None
    except DefusedXmlException as exc:
        raise StagingError(
            f"the workbook declares XML entities or a DTD ({exc}): refused "
            "(protection against entity expansion)"
        ) from None
    except (KeyError, ValueError, OSError, openpyxl.utils.exceptions.InvalidFileException) as e:
        raise StagingError(f"not a readable XLSX workbook: {e}") from None
    if sheet is not None and sheet not in book.sheetnames:
        names = ", ".join(map(repr, book.sheetnames))
        book.close()
        raise StagingError(f"no sheet named {sheet!r}; the workbook has {names}")
    worksheet = book[sheet] if sheet is not None else book.worksheets[0]
    columns = Columns("header column")
    size = path.stat().st_size
    done = {"bytes": 0}

    def rows() -> Iterator[Row]:
        try:
            yield from _rows(worksheet.iter_rows(values_only=True), worksheet.title, columns)
        except DefusedXmlException as exc:
            raise StagingError(
                f"sheet {worksheet.title!r} declares XML entities or a DTD "
                f"({exc}): refused (protection against entity expansion)"
            ) from None
        except ET.ParseError as exc:
            raise StagingError(f"sheet {worksheet.title!r} is not well-formed XML: {exc}") from None
        done["bytes"] = size

    return Stream("xlsx", None, None, columns, rows(), lambda: done["bytes"], book.close)


def _rows(cells: Iterator[tuple[Any, ...]], title: str, columns: Columns) -> Iterator[Row]:
    header = next(cells, None)
    while header is not None and header and header[-1] is None:
        header = header[:-1]
    if not header:
        raise StagingError(f"sheet {title!r} is empty (no header row)")
    for name in header:
        columns.index(name)
    width = len(header)
    count = 0
    for sheet_row, values in enumerate(cells, start=2):
        row = [_cell_text(v) for v in values]
        if all(v is None for v in row):
            continue  # a blank row
        extra = [i for i, v in enumerate(row[width:], start=width + 1) if v is not None]
        if extra:
            raise StagingError(
                f"row {count + 1} (sheet {title!r} row {sheet_row}): a value in column "
                f"{extra[0]}, beyond the {width} header columns",
                row=count + 1,
            )
        count += 1
        yield (row + [None] * width)[:width]


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
