"""Parse the text ``test_decoding`` emits into changes (pure, no database).

One message per line: ``BEGIN``, ``COMMIT (at <timestamp>)`` (with ``include-timestamp``), or
``table <schema>.<name>: INSERT|UPDATE|DELETE: <col>[<type>]:<value> ...``. Values are the
type's text output (the same text a COPY extract reads), quoted unless numeric or boolean;
``null``; or ``unchanged-toast-datum`` for a TOASTed value an UPDATE did not touch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from runs.engine.errors import EngineError

UNCHANGED_TOAST = object()  # a TOASTed value the UPDATE left as it was (not in the stream)

_COLUMN = re.compile(
    r"""(?P<name>"(?:[^"]|"")*"|[^\s\[]+)\[(?P<type>.+?)\]:"""
    r"""(?P<value>'(?:[^']|'')*'|null|unchanged-toast-datum|[^\s]+)"""
)
_TABLE = re.compile(
    r"""^table (?P<schema>"(?:[^"]|"")*"|[^.]+)\.(?P<table>"(?:[^"]|"")*"|[^:]+): """
    r"""(?P<op>INSERT|UPDATE|DELETE): (?P<rest>.*)$""",
    re.DOTALL,
)
_COMMIT = re.compile(r"^COMMIT(?: \d+)?(?: \(at (?P<at>.+)\))?$")


@dataclass(frozen=True)
class Change:
    """One row change: ``values`` is the new row (INSERT/UPDATE) or the old key (DELETE);
    ``old_key`` the old key of an UPDATE that changed it (else None)."""

    op: str  # insert / update / delete
    schema: str
    table: str
    values: dict[str, object] = field(default_factory=dict)
    old_key: dict[str, object] | None = None


@dataclass(frozen=True)
class Commit:
    """End of a source transaction; ``at`` its commit time when the stream carries it."""

    at: datetime | None = None


@dataclass(frozen=True)
class Begin:
    """Start of a source transaction."""


Message = Change | Commit | Begin


def _ident(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _value(text: str, type_name: str) -> object:
    if text == "null":
        return None
    if text == "unchanged-toast-datum":
        return UNCHANGED_TOAST
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if type_name == "boolean":  # printed as true/false; the column's text output is t/f
        return "t" if text == "true" else "f"
    return text


def _columns(text: str) -> dict[str, object]:
    out: dict[str, object] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _COLUMN.match(text, pos)
        if m is None:
            raise EngineError(f"cannot parse logical decoding output near {text[pos : pos + 60]!r}")
        out[_ident(m["name"])] = _value(m["value"], m["type"])
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return out


def parse_message(line: str) -> Message:
    """One test_decoding message as a Begin, Commit or Change. Pure; raises EngineError on
    text it does not understand (never guesses)."""
    if line.startswith("BEGIN"):
        return Begin()
    if line.startswith("COMMIT"):
        m = _COMMIT.match(line)
        at = None
        if m and m["at"]:
            at = datetime.fromisoformat(m["at"].strip())
        return Commit(at=at)
    m = _TABLE.match(line)
    if m is None:
        raise EngineError(f"cannot parse logical decoding output {line[:80]!r}")
    op, rest = m["op"].lower(), m["rest"]
    old_key = None
    if rest.startswith("(no-tuple-data)"):
        raise EngineError(
            f"a {op} on {m['table']} carries no row data: give the table a primary key or "
            "REPLICA IDENTITY FULL"
        )
    if op == "update" and rest.startswith("old-key: "):
        old_text, _, rest = rest[len("old-key: ") :].partition(" new-tuple: ")
        old_key = _columns(old_text)
    elif op == "update" and rest.startswith("new-tuple: "):
        rest = rest[len("new-tuple: ") :]
    return Change(
        op=op, schema=_ident(m["schema"]), table=_ident(m["table"]), values=_columns(rest),
        old_key=old_key,
    )  # fmt: skip
