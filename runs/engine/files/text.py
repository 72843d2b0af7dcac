"""Text decoding for file staging, streamed: the file is read in 256 KB chunks, never whole.

An encoding is chosen (the user's, else a UTF-8 byte order mark, UTF-8, or the best Western /
charset-normalizer guess), the whole file is checked to decode with it (a bad byte is named by
offset and line) and then read as a text stream that counts the bytes consumed.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer
from charset_normalizer.md import mess_ratio

from runs.engine.errors import StagingError

CHUNK = 256 * 1024
BINARY_PROBE = 64 * 1024  # over 5% control characters here: a binary file, not text
DETECT_SAMPLE = 4 << 20  # bytes charset-normalizer looks at when the file is not UTF-8
_CONTROL = bytes([*range(0, 9), 11, *range(14, 27), *range(28, 32)])
_WESTERN = ("cp1252", "latin_1")  # preferred among equally plausible single-byte guesses
_WIDE = {"utf-16": "utf-16-le", "utf-32": "utf-32-le"}

Chunks = Callable[[], Iterator[bytes]]


@dataclass(frozen=True)
class Encoding:
    """The encoding reported to the user, the codec used and the bytes skipped (a BOM)."""

    name: str
    codec: str
    skip: int


def file_chunks(path: Path, start: int = 0) -> Chunks:
    """A re-startable source of the file's bytes from ``start``, CHUNK bytes at a time."""

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            handle.seek(start)
            while chunk := handle.read(CHUNK):
                yield chunk

    return chunks


def bytes_chunks(raw: bytes) -> Chunks:
    """The same for bytes already in memory."""
    return lambda: (raw[i : i + CHUNK] for i in range(0, len(raw), CHUNK))


def encoding_resolve(source: Chunks, head: bytes, encoding: str | None) -> Encoding:
    """Choose the encoding and check that every byte decodes with it; pure (reads ``source``
    as often as needed); raises StagingError naming the byte and line that cannot be decoded,
    or saying the file is binary."""
    wide = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        encoding or ""
    ).lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))
    probe = head[:BINARY_PROBE]
    if not wide and len(probe) >= 64 and _control_share(probe) > 0.05:
        raise StagingError(
            "this looks like a binary file, not text (CSV, JSON or XML): "
            f"{_control_share(probe):.0%} of its first bytes are control characters"
        )
    name = encoding or _detect(source, head)
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise StagingError(f"unknown encoding {name!r}") from None
    skip = 0
    if codec in ("utf-8", "utf-8-sig") and head.startswith(codecs.BOM_UTF8):
        codec, skip, name = "utf-8", len(codecs.BOM_UTF8), encoding or "utf-8-sig"
    bad = _first_bad_byte(source, codec, skip)
    if bad is not None:
        raise _decode_error(source, bad, name)
    return Encoding(name, codec, skip)


def _control_share(sample: bytes) -> float:
    return (len(sample) - len(sample.translate(None, _CONTROL))) / max(1, len(sample))


def _first_bad_byte(source: Chunks, codec: str, skip: int = 0) -> int | None:
    """Offset of the first byte that does not decode with ``codec``, or None."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    for chunk in source():
        if offset + len(chunk) <= skip:
            offset += len(chunk)
            continue
        part = chunk[max(0, skip - offset) :]
        base = offset + len(chunk) - len(part) - len(decoder.getstate()[0])
        try:
            decoder.decode(part)
        except UnicodeDecodeError as exc:
            return base + exc.start
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return offset - len(exc.object) + exc.start
    return None


def _byte_value_and_line(source: Chunks, byte: int) -> tuple[int, int]:
    line, offset = 1, 0
    for chunk in source():
        if byte < offset + len(chunk):
            return chunk[byte - offset], line + chunk.count(b"\n", 0, byte - offset)
        line += chunk.count(b"\n")
        offset += len(chunk)
    return 0, line


def _decode_error(source: Chunks, byte: int, name: str) -> StagingError:
    value, line = _byte_value_and_line(source, byte)
    return StagingError(
        f"byte {byte} (line {line}): cannot decode 0x{value:02x} as {name}", byte=byte
    )


def _detect(source: Chunks, head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    bad = _first_bad_byte(source, "utf-8")
    if bad is None:
        return "utf-8"
    if _any_high_before(source, bad):
        # valid multi-byte UTF-8 before the bad byte: a damaged UTF-8 file, not another
        # encoding; guessing would silently garble every other accented character
        raise _decode_error(source, bad, "utf-8")
    sample = _sample(source)
    best = charset_normalizer.from_bytes(sample).best()
    # charset-normalizer alone misjudges small Western files (even as CJK): score its guess
    # against the common Western codecs by mess ratio, preferring the Western ones on a tie
    candidates = [
        name
        for name in (*_WESTERN, best.encoding if best else None)
        if name and _first_bad_byte(source, name) is None
    ]
    if not candidates:
        raise StagingError("cannot detect the text encoding: choose one")
    sample = sample[:200_000]
    return min(candidates, key=lambda name: mess_ratio(sample.decode(name, errors="ignore"), 1.0))


def _any_high_before(source: Chunks, end: int) -> bool:
    offset = 0
    for chunk in source():
        part = chunk[: max(0, end - offset)]
        if part and max(part) >= 0x80:
            return True
        offset += len(chunk)
        if offset >= end:
            return False
    return False


def _sample(source: Chunks) -> bytes:
    parts, size = [], 0
    for chunk in source():
        parts.append(chunk)
        size += len(chunk)
        if size >= DETECT_SAMPLE:
            break
    return b"".join(parts)[:DETECT_SAMPLE]


def decode_text(raw: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding used) as file staging decodes: a chosen encoding, else a UTF-8 BOM,
    UTF-8, or the detected Western / charset-normalizer encoding. Pure; raises StagingError
    naming the byte and line that cannot be decoded."""
    found = encoding_resolve(bytes_chunks(raw), raw[:BINARY_PROBE], encoding)
    text = raw[found.skip :].decode(found.codec)
    return text.removeprefix("\ufeff"), found.name


class TextReader:
    """The file as decoded text (after any BOM), read in pieces; knows how many bytes it has
    consumed, and turns a character index back into a byte offset (re-reading the file)."""

    def __init__(self, path: Path, found: Encoding) -> None:
        self.path, self.encoding = path, found
        self._raw = path.open("rb")
        self._raw.seek(found.skip)
        self._text = io.TextIOWrapper(self._raw, encoding=found.codec, newline="")
        self._first = True
        self._bom_chars = 0

    def _strip(self, text: str) -> str:
        if self._first:
            self._first = False
            if text.startswith("\ufeff"):  # a BOM the codec keeps (utf-16-le chosen explicitly)
                self._bom_chars = 1
                return text[1:]
        return text

    def read(self, size: int = CHUNK) -> str:
        return self._strip(self._text.read(size))

    def readline(self, limit: int = -1) -> str:
        return self._strip(self._text.readline(limit))

    def bytes_read(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._text.close()

    def byte_at(self, index: int) -> int:
        """Byte offset in the file of decoded character ``index``."""
        codec = self.encoding.codec
        decoder = codecs.getincrementaldecoder(codec)()
        index += self._bom_chars
        chars, offset = 0, self.encoding.skip
        for chunk in file_chunks(self.path, self.encoding.skip)():
            pending = len(decoder.getstate()[0])
            text = decoder.decode(chunk)
            if chars + len(text) >= index:
                bom = (4 if codec == "utf-32" else 2) if codec in _WIDE and offset == 0 else 0
                prefix = text[: index - chars].encode(_WIDE.get(codec, codec))
                return offset - pending + bom + len(prefix)
            chars += len(text)
            offset += len(chunk)
        return offset
