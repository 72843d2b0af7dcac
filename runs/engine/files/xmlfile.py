"""XML files: each child of the root element is a record (its attributes and child elements
are fields). Parsed incrementally with DTDs forbidden: no entity expansion ("billion laughs"),
no external fetch; each record is dropped from the tree once it is read."""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET  # noqa: S405 -- only TreeBuilder/ParseError; parsing is defused
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from runs.engine.errors import StagingError

from .records import Columns, Row, Stream
from .text import Chunks, TextReader, encoding_resolve, file_chunks

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_TEXT_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_PIECE = 64 * 1024  # fed to the parser at a time: bounds the records awaiting hand-over


def xml_stream(path: Path, head: bytes, encoding: str | None) -> Stream:
    """Open an XML file for reading: the parser honours a declared encoding or a UTF-8 BOM,
    else the text is decoded as for CSV; records become rows as the stream is consumed."""
    declared = _XML_DECL.match(head)
    columns = Columns("field")
    if encoding is None and (declared or head.startswith(codecs.BOM_UTF8)):
        name = declared.group(1).decode("ascii") if declared else "utf-8-sig"
        handle = path.open("rb")
        pieces = iter(lambda: handle.read(_PIECE), b"")
        return Stream(
            "xml",
            name,
            None,
            columns,
            _rows(pieces, file_chunks(path), columns),
            handle.tell,
            handle.close,
        )
    found = encoding_resolve(file_chunks(path), head, encoding)
    reader = TextReader(path, found)
    return Stream(
        "xml",
        found.name,
        None,
        columns,
        _rows(_text_pieces(reader), file_chunks(path), columns),
        reader.bytes_read,
        reader.close,
    )


def _text_pieces(reader: TextReader) -> Iterator[str]:
    first = True
    while piece := reader.read(_PIECE):
        if first:
            piece, first = _TEXT_DECL.sub("", piece, count=1), False
        yield piece


class _Records(ET.TreeBuilder):
    """Builds one record element at a time and hands it over when it ends."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.root: ET.Element | None = None
        self.done: deque[ET.Element] = deque()

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        element = super().start(tag, attrs)
        self.depth += 1
        if self.depth == 1:
            self.root = element
        return element

    def end(self, tag: str) -> ET.Element:
        element = super().end(tag)
        self.depth -= 1
        if self.depth == 1 and self.root is not None:
            self.done.append(element)
            self.root.remove(element)
        return element


def _rows(pieces: Iterator[str | bytes], raw: Chunks, columns: Columns) -> Iterator[Row]:
    target = _Records()
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    first: str | None = None
    n = 0
    finished = False
    while not finished:
        piece = next(pieces, None)
        try:
            if piece is None:
                parser.close()
                finished = True
            else:
                parser.feed(piece)
        except ET.ParseError as exc:
            line, column = exc.position
            reason = str(exc).rsplit(": line", 1)[0]
            raise StagingError(f"line {line} column {column + 1}: {reason}") from None
        except DefusedXmlException:
            raise StagingError(
                f"line {_doctype_line(raw)}: DOCTYPE/ENTITY declarations are not allowed "
                "(protection against entity expansion)"
            ) from None
        while target.done:
            element = target.done.popleft()
            n += 1
            if first is None:
                first = element.tag
            elif element.tag != first:
                raise StagingError(
                    f"record {n}: element <{_local(element.tag)}> differs from the "
                    f"first record's <{_local(first)}>",
                    row=n,
                )
            yield columns.row(_record(element, n))
    if n == 0 and target.root is not None:
        raise StagingError(f"the root element <{_local(target.root.tag)}> has no record elements")
    if not len(columns):
        raise StagingError("the xml file has no fields in any record")


def _doctype_line(raw: Chunks) -> int:
    lines = 1
    for chunk in raw():
        found = chunk.find(b"<!DOCTYPE")
        if found >= 0:
            return lines + chunk.count(b"\n", 0, found)
        lines += chunk.count(b"\n")
    return 1


def _record(element: ET.Element, n: int) -> dict[str, str | None]:
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
