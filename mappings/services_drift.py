"""Schema drift of plan versions: capture the schema a version is built against, compare it
with the live source and target, refuse runs on blocking drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from migration_planner.lib.errors import ApplicationError
from runs.engine.connectors import SchemaInfo
from runs.engine.drift import Drift, drift_message, entity_drift, table_schema
from runs.engine.snapshot import EntitySpec, PlanSnapshot

from .models import Plan, PlanVersion, System
from .schema import system_schema


def plan_schemas_capture(*, snapshot: PlanSnapshot, source: System, target: System) -> dict:
    """The stored form of every table the snapshot's entities read and write, as the live
    systems have them now. Read-only; never raises (an unreadable system is recorded as
    ``{"error": ...}`` and its tables are then only checked for existence)."""
    out: dict[str, Any] = {"source": {}, "target": {}}
    for side, system, attr in (
        ("source", source, "source_table"),
        ("target", target, "target_table"),
    ):
        try:
            schema = system_schema(system, fresh=True)
        except ApplicationError as exc:
            out.setdefault("errors", {})[side] = exc.message
            continue
        for entity in snapshot.entities:
            table = getattr(entity, attr)
            if table in schema.tables:
                out[side][table] = table_schema(schema.tables[table])
    return out


@dataclass
class EntityDrift:
    entity: str
    source_table: str
    target_table: str
    items: list[Drift] = field(default_factory=list)

    @property
    def blocking(self) -> list[Drift]:
        return [d for d in self.items if d.blocking]

    @property
    def shown(self) -> list[Drift]:
        """Blocking first, then warnings, then information."""
        order = {"blocking": 0, "warning": 1, "info": 2}
        return sorted(self.items, key=lambda d: (order[d.severity], d.side, d.column))


@dataclass
class DriftReport:
    version: PlanVersion
    source: System
    target: System
    entities: list[EntityDrift]
    checked_at: datetime
    stored: bool  # False: a version frozen before schemas were stored (existence check only)

    @property
    def blocking(self) -> list[Drift]:
        return [d for e in self.entities for d in e.blocking]

    @property
    def items(self) -> list[Drift]:
        return [d for e in self.entities for d in e.items]

    @property
    def message(self) -> str:
        """The refusal text naming every blocking change ('' when nothing blocks)."""
        return drift_message(self.blocking) if self.blocking else ""


def version_stored_schemas(version: PlanVersion, target: System) -> dict | None:
    """The schemas to hold a run of ``version`` on ``target`` to (None: existence only)."""
    schemas = version.schemas or {}
    if not schemas.get("source") and not schemas.get("target"):
        return None
    if target.pk != version.plan.target_id:
        # Built against another target: compare its source side only, the target by existence.
        return {"source": schemas.get("source", {}), "target": {}}
    return schemas


def _live(system: System) -> SchemaInfo:
    return system_schema(system, fresh=True)


def plan_version_drift(
    *,
    version: PlanVersion,
    target: System | None = None,
    entities: list[EntitySpec] | None = None,
) -> DriftReport:
    """Compare the version's stored schemas with the live source and ``target`` (default: the
    plan's) for ``entities`` (default: all). Read-only; ApplicationError when a system cannot
    be read."""
    from .services import plan_version_snapshot

    plan = version.plan
    target = target or plan.target
    stored = version_stored_schemas(version, target)
    live_src, live_tgt = _live(plan.source), _live(target)
    if entities is None:
        entities = plan_version_snapshot(version).entities_in_load_order()
    report = [
        EntityDrift(
            entity=e.name,
            source_table=e.source_table,
            target_table=e.target_table,
            items=entity_drift(
                e,
                stored=stored,
                source=live_src.tables.get(e.source_table),
                target=live_tgt.tables.get(e.target_table),
            ),
        )
        for e in entities
    ]
    return DriftReport(
        version=version,
        source=plan.source,
        target=target,
        entities=report,
        checked_at=timezone.now(),
        stored=stored is not None,
    )


def plan_drift_refuse(
    *, version: PlanVersion, target: System, entities: list[EntitySpec] | None = None
) -> DriftReport:
    """``plan_version_drift``, raising ApplicationError with every blocking change (table,
    column, was, now, what it breaks) when any. Read-only."""
    report = plan_version_drift(version=version, target=target, entities=entities)
    if report.blocking:
        raise ApplicationError(
            report.message,
            field="schema",
            extra={"drift": [d.to_dict() for d in report.blocking], "version": version.number},
        )
    return report


def plan_latest_version(plan: Plan) -> PlanVersion | None:
    """The plan's newest version, or None."""
    return plan.versions.order_by("-number").first()
