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
    out: dict[str, Any] = {
        "source": {},
        "target": {},
        "systems": {"source": str(source.uuid), "target": str(target.uuid)},
    }
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
    version: PlanVersion | None
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


def version_stored_schemas(
    version: PlanVersion, target: System, source: System | None = None
) -> dict | None:
    """The schemas to hold a run of ``version`` from ``source`` (default: the plan's) into
    ``target`` to. A side whose system is not the one the version was built against is
    checked for existence only; None when the version stored no schema at all."""
    schemas = version.schemas or {}
    if not schemas.get("source") and not schemas.get("target"):
        return None
    source = source or version.plan.source
    systems = schemas.get("systems", {})
    same = {"source": str(source.uuid), "target": str(target.uuid)}
    return {
        side: schemas.get(side, {}) if systems.get(side) == same[side] else {}
        for side in ("source", "target")
    }


def _live(system: System) -> SchemaInfo:
    return system_schema(system, fresh=True)


def _report(
    *,
    version: PlanVersion | None,
    plan: Plan,
    target: System,
    stored: dict | None,
    entities: list[EntitySpec],
) -> DriftReport:
    live_src, live_tgt = _live(plan.source), _live(target)
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

    target = target or version.plan.target
    if entities is None:
        entities = plan_version_snapshot(version).entities_in_load_order()
    return _report(
        version=version,
        plan=version.plan,
        target=target,
        stored=version_stored_schemas(version, target),
        entities=entities,
    )


def plan_launch_drift(*, plan: Plan, target: System, scope_entity: str = "") -> DriftReport:
    """The drift a launch would meet now: against the latest version when it holds the plan's
    current content (that version is what the run would execute), else the live schema alone
    (a new version is frozen from it). Read-only; ApplicationError when unreadable."""
    from .services import (
        plan_content_hash,
        plan_snapshot_build,
        plan_version_snapshot,
        snapshot_content,
    )

    latest = plan_latest_version(plan)
    current = plan_snapshot_build(plan=plan, version=0)
    if latest is not None and snapshot_content(latest.snapshot) == plan_content_hash(plan=plan):
        snapshot, stored = plan_version_snapshot(latest), version_stored_schemas(latest, target)
    else:
        latest, snapshot, stored = None, current, None
    entities = [
        e for e in snapshot.entities_in_load_order() if not scope_entity or e.name == scope_entity
    ]
    return _report(version=latest, plan=plan, target=target, stored=stored, entities=entities)


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
