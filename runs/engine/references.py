"""Reference lookups of a batch: which parent entities an entity's rules read (by key map),
and the key maps a batch needs, limited to the values it holds."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from runs.engine.connectors.base import Connector
from runs.engine.failure_rows import missing
from runs.engine.snapshot import EntitySpec, PlanSnapshot


def reference_parents(entity: EntitySpec) -> dict[str, set[str]]:
    """Parent entity name -> source columns whose values a reference lookup maps."""
    from runs.engine.rules import REGISTRY

    parents: dict[str, set[str]] = {}
    for spec in entity.fields:
        for step in spec.steps:
            rule = REGISTRY.get(step.rule)
            for param in rule.params if rule else ():
                if param.type == "entity" and step.params.get(param.name):
                    parents.setdefault(str(step.params[param.name]), set()).update(spec.sources)
    return parents


def batch_keymaps(
    snapshot: PlanSnapshot,
    entity: EntitySpec,
    frame: pd.DataFrame,
    source: Connector,
    target: Connector,
    dry_run: bool,
    failed_parents: Mapping[str, set[str]] | None = None,
) -> dict[str, dict[str, str]]:
    """Key maps for this batch's reference lookups, limited to the values it contains.

    A dry run resolves against the parent's *source* keys (key -> itself), as nothing is
    loaded, minus the parent keys that failed earlier in the same dry run (``failed_parents``)
    — so a dry run fails the same children a load would.
    """
    keymaps: dict[str, dict[str, str]] = {}
    for parent_name, columns in reference_parents(entity).items():
        values = set()
        for col in columns:
            if col in frame.columns:
                values.update(str(v).strip() for v in frame[col] if not missing(v))
        values.discard("")
        wanted = sorted(values)
        if dry_run:
            parent = snapshot.entity(parent_name)
            found = source.fetch_keys(parent.source_table, parent.source_key, wanted)
            found -= (failed_parents or {}).get(parent_name, set())
            keymaps[parent_name] = {k: k for k in found}
        else:
            keymaps[parent_name] = target.keymap_lookup(snapshot.plan, parent_name, wanted)
    return keymaps
