"""What a plan says besides the engine's snapshot — entity and field notes, lookup descriptions,
the plan's description, validation rules and UAT cases — and the hash that binds both.

A version stores this under ``_document`` next to the engine snapshot; its ``content_hash``
covers both, so a sign-off approves the notes and checks too, and revert restores them.
"""

from __future__ import annotations

import hashlib
import json

from runs.engine.snapshot import PlanSnapshot

from .models import Plan

_RULE_KEYS = ("name", "phase", "kind", "entity", "column", "params", "severity", "enabled")
_CASE_KEYS = ("title", "steps", "expected_result")


def plan_document_data(*, plan: Plan) -> dict:
    """The plan's non-engine content as plain, deterministic data (read-only)."""
    entities = plan.entities.prefetch_related("fields").order_by("load_order", "name")
    rules = plan.validation_rules.order_by("name")
    cases = plan.uat_cases.order_by("position", "id")
    return {
        "description": plan.description,
        "entity_notes": {e.name: e.notes for e in entities if e.notes},
        "field_notes": {
            e.name: {f.target_column: f.notes for f in e.fields.all() if f.notes}
            for e in entities
            if any(f.notes for f in e.fields.all())
        },
        "lookup_descriptions": {
            lk.name: lk.description for lk in plan.lookups.order_by("name") if lk.description
        },
        "validation_rules": [{k: getattr(r, k) for k in _RULE_KEYS} for r in rules],
        "uat_cases": [{k: getattr(c, k) for k in _CASE_KEYS} for c in cases],
    }


def content_hash(snapshot: PlanSnapshot, document: dict) -> str:
    """SHA-256 over the engine snapshot's hash and the canonical JSON of ``document`` (pure)."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{snapshot.content_hash()}\n{text}".encode()).hexdigest()
