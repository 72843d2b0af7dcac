"""Checks that run before a file is parsed, so a hostile file costs almost nothing (no Django)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from runs.engine.errors import StagingError

# An XLSX is a zip: refuse one whose parts inflate past this (a "zip bomb") or whose first
# sheet declares more cells than this, before openpyxl reads a byte of it.
XLSX_MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
XLSX_MAX_RATIO = 200
XLSX_MAX_CELLS = 20_000_000
# openpyxl holds every shared string in memory (read-only mode too): cap the part's size.
XLSX_MAX_SHARED_STRINGS_BYTES = 64 * 1024 * 1024


def xlsx_check(path: Path) -> None:
    """Raise StagingError for a workbook that inflates too far (zip bomb) or declares too
    many cells, or whose shared-strings part (held whole in memory by openpyxl) is over
    XLSX_MAX_SHARED_STRINGS_BYTES; reads only the zip directory and the sheets' first 4 KB."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(i.file_size for i in infos)
            packed = max(1, sum(i.compress_size for i in infos))
            if total > XLSX_MAX_UNZIPPED_BYTES or total > XLSX_MAX_RATIO * packed:
                raise StagingError(
                    f"the workbook unpacks to {total:,} bytes from {packed:,} "
                    f"(limit {XLSX_MAX_UNZIPPED_BYTES:,} bytes, {XLSX_MAX_RATIO}x): refused "
                    "as a zip bomb; save it again or export CSV"
                )
            for info in infos:
                if info.filename.lower().endswith("sharedstrings.xml") and (
                    info.file_size > XLSX_MAX_SHARED_STRINGS_BYTES
                ):
                    raise StagingError(
                        f"the workbook's shared strings unpack to {info.file_size:,} bytes "
                        f"(limit {XLSX_MAX_SHARED_STRINGS_BYTES:,}): export the sheet as CSV"
                    )
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    with archive.open(info) as part:
                        head = part.read(4096).decode("utf-8", "replace")
                    _check_dimension(head, info.filename)
    except zipfile.BadZipFile:
        raise StagingError("not an XLSX workbook: the file is not a zip archive") from None


_DIMENSION = re.compile(r'<(?:\w+:)?dimension\s+ref="[A-Z]+([0-9]+)(?::([A-Z]+)([0-9]+))?"')


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _check_dimension(head: str, name: str) -> None:
    found = _DIMENSION.search(head)
    if not found or not found.group(2):
        return
    cells = _column_number(found.group(2)) * int(found.group(3))
    if cells > XLSX_MAX_CELLS:
        raise StagingError(
            f"{name} declares {cells:,} cells (limit {XLSX_MAX_CELLS:,}): split the sheet "
            "or export CSV"
        )
