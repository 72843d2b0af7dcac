"""Shared read helpers for run services: frozen snapshot and the entities a run covers."""

from __future__ import annotations

from functools import lru_cache

from mappings.models import PlanVersion
from mappings.services import plan_version_snapshot
from runs.engine.snapshot import EntitySpec, PlanSnapshot
from runs.enums import BatchKind, RunMode
from runs.models import Batch, Run


@lru_cache(maxsize=32)
def _snapshot(version_id: int) -> PlanSnapshot:
    return plan_version_snapshot(PlanVersion.objects.get(pk=version_id))


@lru_cache(maxsize=32)
def _stored_schemas(version_id: int, source_id: int, target_id: int) -> dict | None:
    from mappings.models import System
    from mappings.services_drift import version_stored_schemas

    version = PlanVersion.objects.select_related("plan").get(pk=version_id)
    return version_stored_schemas(
        version, System.objects.get(pk=target_id), System.objects.get(pk=source_id)
    )


def run_stored_schemas(run: Run) -> dict | None:
    """The schemas the run's batches are held to (the version's; cached per process)."""
    return _stored_schemas(run.version_id, run.plan.source_id, run.target_id)


def run_snapshot(run: Run) -> PlanSnapshot:
    """The run's frozen plan snapshot (cached per process: versions are immutable)."""
    return _snapshot(run.version_id)


def run_entities(run: Run) -> list[EntitySpec]:
    """Entities the run covers, parents first."""
    entities = run_snapshot(run).entities_in_load_order()
    if run.scope_entity:
        entities = [e for e in entities if e.name == run.scope_entity]
    return entities


def run_ledger_id(run: Run) -> str:
    """The run's identity in the target ledger."""
    return str(run.uuid)


def run_phases(run: Run) -> list[tuple[str, str]]:
    """The run's phases in order as (entity name, batch kind): every entity's rows parents
    first, then (delta runs) the source deletes of entities with a delete policy, children
    first so a parent row is never deleted under its children."""
    entities = run_entities(run)
    phases = [(e.name, BatchKind.ROWS.value) for e in entities]
    if run.mode == RunMode.DELTA:
        phases += [
            (e.name, BatchKind.DELETES.value)
            for e in reversed(entities)
            if e.delete_policy != "ignore"
        ]
    return phases


def phase_batches(run: Run, phase: int):  # -> QuerySet[Batch]
    """The run's batches of phase number ``phase`` (see run_phases); none past the last."""
    phases = run_phases(run)
    if phase >= len(phases):
        return Batch.objects.none()
    entity, kind = phases[phase]
    return Batch.objects.filter(run=run, entity=entity, kind=kind)
