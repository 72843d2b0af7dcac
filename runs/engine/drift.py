"""Schema drift: the schema a plan version was built against versus the live one (pure).

A plan version stores, for every table its entities read and write, the columns (name, type,
nullability, key membership) as ``table_schema`` renders them. Before a run and in each batch
the columns the plan uses are compared with the live schema: a used column that is gone or
whose type changed is *blocking* (the run stops before writing); other changes are shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from runs.engine.connectors.base import TableInfo
from runs.engine.errors import SchemaError
from runs.engine.snapshot import EntitySpec

BLOCKING, WARNING, INFO = "blocking", "warning", "info"


@dataclass(frozen=True)
class Drift:
    """One difference between a version's stored schema and the live schema."""

    side: str  # "source" | "target"
    table: str
    column: str  # "" for the table itself
    change: str  # table missing | column missing | retyped | nullability | added | keys
    was: str
    now: str
    breaks: tuple[str, ...]  # what in the plan uses it ("field description", "source key")
    severity: str  # blocking | warning | info

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    def text(self) -> str:
        """One line naming side, table, column, was, now and what it breaks."""
        where = f"{self.side} table “{self.table}”"
        if self.column:
            where += f", column “{self.column}”"
        uses = f" (used by {', '.join(self.breaks)})" if self.breaks else ""
        return f"{where}: {self.change}, was {self.was}, now {self.now}{uses}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (API, stored run error details)."""
        return asdict(self) | {"blocking": self.blocking}


def table_schema(info: TableInfo) -> dict[str, Any]:
    """The stored form of one table: columns (name, type, nullable, primary key), keys."""
    return {
        "columns": [
            {
                "name": c.name,
                "type": c.data_type,
                "nullable": c.nullable,
                "primary_key": c.primary_key,
                "has_default": c.has_default,
                "generated": c.generated,
            }
            for c in info.columns
        ],
        "primary_key": list(info.primary_key),
        "unique": [list(u) for u in info.unique],
    }


def source_uses(entity: EntitySpec) -> dict[str, list[str]]:
    """Source column -> what in the entity reads it, in first-use order."""
    uses: dict[str, list[str]] = {}
    for col in entity.source_key:
        uses.setdefault(col, []).append("source key")
    for f in entity.fields:
        for col in f.sources:
            uses.setdefault(col, []).append(f"field {f.target}")
    for flt in entity.filters:
        uses.setdefault(flt.column, []).append("row filter")
    if entity.watermark_column:
        uses.setdefault(entity.watermark_column, []).append("delta watermark")
    return uses


def target_uses(entity: EntitySpec) -> dict[str, list[str]]:
    """Target column -> what in the entity writes or reads it."""
    uses: dict[str, list[str]] = {entity.target_key: ["target key"]}
    if entity.external_id:
        uses.setdefault(entity.external_id, []).append("external id")
    for f in entity.fields:
        uses.setdefault(f.target, []).append(f"field {f.target}")
    return uses


def _columns(stored: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in (stored or {}).get("columns", [])}


def _type(col: Mapping[str, Any] | None) -> str:
    if col is None:
        return "missing"
    return f"{col['type'] or 'untyped'}{'' if col['nullable'] else ' NOT NULL'}"


def table_drift(
    *,
    side: str,
    table: str,
    uses: Mapping[str, list[str]],
    stored: Mapping[str, Any] | None,
    live: TableInfo | None,
    writes: bool = False,
) -> list[Drift]:
    """Differences for one table. ``stored`` None (a version older than stored schemas) only
    checks that every used column exists live. ``writes``: the plan inserts into the table."""
    if live is None:
        return [
            Drift(
                side,
                table,
                "",
                "table missing",
                "a table",
                "missing",
                tuple(sorted({u for us in uses.values() for u in us})),
                BLOCKING,
            )
        ]
    was, now = _columns(stored), _columns(table_schema(live))
    out: list[Drift] = []
    for name, used_by in uses.items():
        old, new = was.get(name), now.get(name)
        if new is None:
            shown = _type(old) if old else "in the plan"
            out.append(
                Drift(
                    side, table, name, "column missing", shown, "missing", tuple(used_by), BLOCKING
                )
            )
        elif old is not None and old["type"] != new["type"]:
            out.append(
                Drift(
                    side, table, name, "retyped", _type(old), _type(new), tuple(used_by), BLOCKING
                )
            )
        elif old is not None and old["nullable"] != new["nullable"]:
            out.append(
                Drift(
                    side,
                    table,
                    name,
                    "nullability",
                    _type(old),
                    _type(new),
                    tuple(used_by),
                    WARNING,
                )
            )
    if stored is None:
        return out
    for name, old in was.items():
        if name not in uses and name not in now:
            out.append(Drift(side, table, name, "column missing", _type(old), "missing", (), INFO))
        elif name not in uses and old["type"] != now[name]["type"]:
            out.append(Drift(side, table, name, "retyped", _type(old), _type(now[name]), (), INFO))
    for name, new in now.items():
        if name in was:
            continue
        must_write = (
            side == "target"
            and writes
            and not new["nullable"]
            and not new["has_default"]
            and not new["generated"]
            and name not in uses
        )
        breaks = ("every insert (NOT NULL, no default, not mapped)",) if must_write else ()
        out.append(
            Drift(
                side,
                table,
                name,
                "added",
                "absent",
                _type(new),
                breaks,
                BLOCKING if must_write else INFO,
            )
        )
    old_keys = (stored.get("primary_key", []), sorted(stored.get("unique", [])))
    new_keys = (list(live.primary_key), sorted([list(u) for u in live.unique]))
    if old_keys != new_keys:
        out.append(Drift(side, table, "", "keys", _keys(*old_keys), _keys(*new_keys), (), WARNING))
    return out


def _keys(pk: list[str], unique: list[list[str]]) -> str:
    shown = [f"primary ({', '.join(pk)})"] if pk else []
    shown += [f"unique ({', '.join(u)})" for u in unique if list(u) != list(pk)]
    return "; ".join(shown) or "no keys"


def entity_drift(
    entity: EntitySpec,
    *,
    stored: Mapping[str, Any] | None,
    source: TableInfo | None,
    target: TableInfo | None,
) -> list[Drift]:
    """Drift of one entity's source and target tables. ``stored`` is a version's schemas
    (``{"source": {table: ...}, "target": {table: ...}}``) or None for an older version."""
    stored_src = None if stored is None else stored.get("source", {}).get(entity.source_table)
    stored_tgt = None if stored is None else stored.get("target", {}).get(entity.target_table)
    out = table_drift(
        side="source",
        table=entity.source_table,
        uses=source_uses(entity),
        stored=stored_src,
        live=source,
    )
    if entity.target_table:
        out += table_drift(
            side="target",
            table=entity.target_table,
            uses=target_uses(entity),
            stored=stored_tgt,
            live=target,
            writes=True,
        )
    return out


def drift_message(items: list[Drift]) -> str:
    """The refusal text for blocking drift: every blocking change, one per line."""
    blocking = [d for d in items if d.blocking]
    lines = "; ".join(d.text() for d in blocking)
    return f"Schema drift, nothing was written: {lines}."


def entity_check(
    entity: EntitySpec,
    *,
    stored: Mapping[str, Any] | None,
    source: TableInfo | None,
    target: TableInfo | None,
) -> list[Drift]:
    """``entity_drift``, raising SchemaError (the refusal text) when any change is blocking."""
    items = entity_drift(entity, stored=stored, source=source, target=target)
    if any(d.blocking for d in items):
        raise SchemaError(drift_message(items))
    return items
