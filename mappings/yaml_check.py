"""Schema check of a plan document before import: every table and column it names must exist
in the source / target system's introspected schema (line and column of each problem).

A plan may be written for a schema not yet created: the caller then confirms explicitly
(``allow_unknown_schema``); otherwise unknown tables and columns are refused, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migration_planner.lib.errors import ApplicationError

from .schema import system_schema

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SchemaProblem:
    """One name the document uses that the live schema does not have."""

    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.path}: {self.message}"


def _tables(system) -> tuple[dict | None, str | None]:
    try:
        return system_schema(system).tables, None
    except ApplicationError as exc:
        return None, exc.message


def schema_problems(
    doc: Any, locate: Callable[[Path], tuple[int, int, str]]
) -> list[SchemaProblem]:
    """Unknown tables / columns of a read document; ``locate`` maps a path to (line, column,
    path text). Read-only; an unreadable schema is one problem per system."""
    out: list[SchemaProblem] = []

    def add(path: Path, message: str) -> None:
        line, column, where = locate(path)
        out.append(SchemaProblem(line, column, where, message))

    sides = {}
    for side, system in (("source", doc.source), ("target", doc.target)):
        tables, error = _tables(system)
        if error:
            add(("systems", side), f"cannot read the schema of “{system.name}”: {error}")
        sides[side] = (system, tables)
    for i, (values, fields) in enumerate(doc.entities):
        _entity_problems(add, ("entities", i), values, fields, sides)
    return out


def _columns(add, sides, side: str, table: str, path: Path) -> set[str] | None:
    system, tables = sides[side]
    if tables is None:
        return None
    info = tables.get(table)
    if info is None:
        add(path, f"no table “{table}” in {side} system “{system.name}”")
        return None
    return set(info.column_names)


def _entity_problems(add, p: Path, values: dict, fields: list, sides: dict) -> None:
    source = _columns(add, sides, "source", values["source_table"], (*p, "source_table"))
    target = _columns(add, sides, "target", values["target_table"], (*p, "target_table"))
    if source is not None:
        checks = [("source_key", k) for k in values["source_key"]]
        checks += [("dedupe_on", k) for k in values.get("dedupe_on") or []]
        if values.get("watermark_column"):
            checks.append(("watermark_column", values["watermark_column"]))
        for key, col in checks:
            if col not in source:
                add((*p, key), f"no column “{col}” in source table “{values['source_table']}”")
    if target is not None:
        for key in ("target_key", "external_id", "delete_mark_column"):
            col = values.get(key)
            if col and col not in target:
                add((*p, key), f"no column “{col}” in target table “{values['target_table']}”")
    for j, (field_values, _) in enumerate(fields):
        fp = (*p, "fields", j)
        if target is not None and field_values["target_column"] not in target:
            add(
                (*fp, "target"),
                f"no column “{field_values['target_column']}” in target "
                f"table “{values['target_table']}”",
            )
        for col in field_values["source_columns"] if source is not None else ():
            if col not in source:
                add(
                    (*fp, "sources"),
                    f"no column “{col}” in source table “{values['source_table']}”",
                )


def _count(n: int) -> str:
    return "1 table or column" if n == 1 else f"{n} tables or columns"


def schema_refusal(problems: list[SchemaProblem]) -> ApplicationError:
    """The error an import without confirmation raises: each problem, and how to go on."""
    shown = "; ".join(str(p) for p in problems[:10])
    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
    first = problems[0]
    return ApplicationError(
        f"The plan names {_count(len(problems))} the systems do not have: "
        f"{shown}{more}. Fix the document, or confirm it is written for a schema not yet "
        "created (allow_unknown_schema).",
        field=first.path,
        extra={
            "line": first.line,
            "column": first.column,
            "path": first.path,
            "schema_problems": [p.__dict__ for p in problems],
        },
    )
