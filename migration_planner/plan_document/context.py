"""What the plan document shows, gathered as plain data (read-only; no secrets)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.html import escape

from mappings.models import Plan
from mappings.selectors import plan_detail
from mappings.services import plan_content_hash, snapshot_content
from migration_planner.lib.errors import ApplicationError
from runs.engine.rules import RuleParamError, validate_params
from validation.models import SignOff, UATResult
from validation.signoff_rollback import signoffs_rolled_back_since

from .words import (
    _check_words,
    _filter_words,
    _pct,
    duration_text,
    plural,
    rule_chain_words,
)

LOOKUP_ROWS_SHOWN = None  # every entry is printed: a signer approves the whole table
TEMPLATE = "mappings/document/plan_document.html"


def _field_row(field, lookups: dict[str, dict]) -> dict:
    steps = [
        (s.rule, s.params) for s in sorted(field.steps.all(), key=lambda s: (s.position, s.id))
    ]
    sources = list(field.source_columns or [])
    used = [(p or {}).get("lookup") for _, p in steps]
    return {
        "lookup_refs": [lookups[name] for name in dict.fromkeys(used) if name in lookups],
        "sources": sources,
        "source_text": ", ".join(sources) or "—",
        "target": field.target_column,
        "required": field.required,
        "transformation": rule_chain_words(
            steps, sources=len(sources), default=field.default_value, required=field.required
        ),
        "notes": field.notes,
    }


def _entity_section(entity, number: str, lookups: dict[str, dict]) -> dict:
    fields = sorted(entity.fields.all(), key=lambda f: (f.position, f.id))
    return {
        "number": number,
        "name": entity.name,
        "source_table": entity.source_table,
        "target_table": entity.target_table,
        "source_key": ", ".join(entity.source_key or []),
        "target_key": entity.target_key,
        "external_id": entity.external_id,
        "load_mode": entity.get_load_mode_display(),
        "load_order": entity.load_order,
        "filters": [_filter_words(f) for f in entity.filters or []],
        "dedupe_on": ", ".join(entity.dedupe_on or []),
        "watermark_column": entity.watermark_column,
        "notes": entity.notes,
        "rows": [_field_row(f, lookups) for f in fields],
    }


def _lookup_section(lookup, number: str, uses: list[tuple[str, dict]]) -> dict:
    entries = sorted(lookup.entries.all(), key=lambda e: e.key)
    return {
        "number": number,
        "name": lookup.name,
        "description": lookup.description,
        "default": lookup.default_value,
        "count": len(entries),
        "default_words": _default_words(lookup.default_value, uses),
        "entries": [(e.key, e.value) for e in entries],
        "truncated": False,
        "entry_words": plural(len(entries), "entry", "entries"),
    }


def _system(system) -> dict:
    """What the document may say about a system: never its secret or connection details."""
    return {
        "name": system.name,
        "kind": system.get_kind_display(),
        "environment": system.get_environment_display(),
        "role": system.get_role_display(),
        "description": system.description,
    }


def _version(plan: Plan) -> dict:
    """The version whose content the plan holds now — the newest such, so a plan reverted to
    an older version's content is that version again — else "unversioned draft"."""
    versions = sorted(plan.versions.all(), key=lambda v: v.number, reverse=True)
    try:
        current = plan_content_hash(plan=plan)
    except ApplicationError:
        current = None
    if not versions:
        return {
            "label": "unversioned draft",
            "number": None,
            "hash": "",
            "current": False,
            "note": "The plan has no frozen version yet.",
        }
    latest = versions[0]
    match = next((v for v in versions if snapshot_content(v.snapshot) == current), None)
    if match is None:
        return {
            "label": "unversioned draft",
            "number": latest.number,
            "hash": latest.content_hash,
            "current": False,
            "created_at": latest.created_at,
            "note": f"The plan was edited after version {latest.number}; freeze a new "
            "version before sign-off.",
        }
    newer = (
        ""
        if match is latest
        else (f"Reverted to version {match.number}'s content (version {latest.number} is newer).")
    )
    return {
        "label": f"version {match.number}",
        "number": match.number,
        "hash": match.content_hash,
        "current": True,
        "note": newer,
        "created_at": match.created_at,
    }


def _lookup_uses(entities: list) -> dict[str, list[tuple[str, dict]]]:
    """Per lookup name: (entity.target, value_map parameters with defaults) of every step
    mapping through it."""
    uses: dict[str, list[tuple[str, dict]]] = {}
    for entity in entities:
        for field in sorted(entity.fields.all(), key=lambda f: (f.position, f.id)):
            for step in field.steps.all():
                name = (step.params or {}).get("lookup")
                if step.rule != "value_map" or not name:
                    continue
                try:
                    params = validate_params(step.rule, step.params)
                except RuleParamError:
                    continue
                uses.setdefault(name, []).append((f"{entity.name}.{field.target_column}", params))
    return uses


def _default_words(default: str | None, uses: list[tuple[str, dict]]) -> str:
    """Which fields use the lookup's default, for which values (value_map's on_missing and
    on_null), and which fail or keep unmapped values instead. Pure."""
    if default is None:
        return ""
    missing = {"fail": "unmapped values fail", "keep": "unmapped values are kept"}
    used, unused = [], []
    for name, p in uses:
        gets = [
            w
            for w, on in (("unmapped", p["on_missing"]), ("empty", p["on_null"]))
            if on == "default"
        ]
        if not gets:
            unused.append(f"{name}: {missing[p['on_missing']]}")
        elif len(gets) == 2:
            used.append(f"{name} uses it for unmapped and empty values")
        else:
            rest = f" ({missing[p['on_missing']]})" if gets == ["empty"] else ""
            used.append(f"{name} uses it for {gets[0]} values only{rest}")
    if not used:
        why = f" ({'; '.join(unused)})" if unused else " (no field maps through this table)"
        return f"Default “{default}”: not used{why}."
    return f"Default “{default}”: " + "; ".join(used + unused) + "."


def _signoff(plan: Plan) -> dict | None:
    signoff = (
        SignOff.objects.filter(plan=plan)
        .select_related("version", "approver", "run")
        .order_by("-created_at")
        .first()
    )
    if signoff is None:
        return None
    note = signoffs_rolled_back_since([signoff]).get(signoff.pk)
    return {
        "rolled_back_since": note.text if note else "",
        "decision": signoff.get_decision_display(),
        "approved": signoff.is_valid,
        "approver": signoff.approver.get_username(),
        "at": signoff.created_at,
        "version": signoff.version.number,
        "hash": signoff.version.content_hash,
        "reason": signoff.reason,
        "voided_at": signoff.voided_at,
        "voided_reason": signoff.voided_reason,
    }


def _uat(plan: Plan) -> list[dict]:
    latest: dict[int, Any] = {}
    results = UATResult.objects.filter(case__plan=plan).select_related("tester")
    for result in results.order_by("case_id", "-recorded_at"):
        latest.setdefault(result.case_id, result)
    return [
        {
            "number": i,
            "title": c.title,
            "steps": c.steps,
            "expected": c.expected_result,
            "result": (latest[c.pk].get_outcome_display() if c.pk in latest else "not run"),
            "comment": latest[c.pk].comment if c.pk in latest else "",
        }
        for i, c in enumerate(plan.uat_cases.order_by("position", "id"), start=1)
    ]


def _validation(plan: Plan) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"pre": [], "post": []}
    for rule in plan.validation_rules.order_by("name"):
        out[rule.phase].append(
            {
                "name": rule.name,
                "kind": rule.get_kind_display(),
                "entity": rule.entity,
                "column": rule.column,
                "check": _check_words(rule),
                "severity": rule.get_severity_display(),
                "enabled": rule.enabled,
            }
        )
    return out


# --------------------------------------------------------------------------- timeline (SVG)

_BAR_COLOURS = ("#2f6f9f", "#3f8f6f", "#8f6f2f", "#7f4f8f", "#9f4f4f", "#4f7f8f")
_SVG_W, _SVG_LABEL, _SVG_ROW, _SVG_HEAD = 720, 210, 26, 28


def _month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    month = dt.date(first.year, first.month, 1)
    out = []
    while month <= last:
        if month >= first:
            out.append(month)
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return out


def timeline_svg(milestones: list) -> str:
    """Milestones as a Gantt-like inline SVG (no script); '' when there are none. Pure."""
    if not milestones:
        return ""
    first = min(m.start for m in milestones)
    last = max(m.end for m in milestones)
    scale = (_SVG_W - _SVG_LABEL - 12) / ((last - first).days + 1)
    height = _SVG_HEAD + _SVG_ROW * len(milestones) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SVG_W}" height="{height}" '
        f'viewBox="0 0 {_SVG_W} {height}" role="img" aria-label="Timeline" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">'
    ]
    months = _month_starts(first, last)
    step = max(1, len(months) // 8)
    for month in months[::step]:
        x = _SVG_LABEL + (month - first).days * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{_SVG_HEAD - 12}" x2="{x:.1f}" y2="{height}" '
            'stroke="#ccc" stroke-dasharray="3,3"/>'
            f'<text x="{x + 3:.1f}" y="{_SVG_HEAD - 14}" fill="#555">'
            f"{month:%b %Y}</text>"
        )
    for i, m in enumerate(milestones):
        y = _SVG_HEAD + i * _SVG_ROW
        x = _SVG_LABEL + (m.start - first).days * scale
        width = max(((m.end - m.start).days + 1) * scale, 2)
        label = m.phase if len(m.phase) <= 30 else m.phase[:29] + "…"
        weeks = duration_text((m.end - m.start).days + 1, short=True)
        parts.append(
            f'<text x="4" y="{y + 13}" fill="#222">{escape(label)}</text>'
            f'<rect x="{x:.1f}" y="{y + 2}" width="{width:.1f}" height="16" rx="3" '
            f'fill="{_BAR_COLOURS[i % len(_BAR_COLOURS)]}"><title>{escape(m.phase)}: '
            f"{m.start:%Y-%m-%d} – {m.end:%Y-%m-%d}</title></rect>"
        )
        if width > 46:
            parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}" fill="#fff">{weeks}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- rollback


def _rollback(plan: Plan, entities: list[dict], validation: dict) -> dict:
    """Triggers and steps of the real mechanism: ledger per batch, reverse undo, checksums."""
    blocking = [r["name"] for r in validation["post"] if r["severity"] == "Blocking"]
    automatic = (
        "; the run is then rolled back automatically"
        if plan.rollback_on_threshold
        else "; the operator decides on rollback"
    )
    order = ", ".join(e["name"] for e in sorted(entities, key=lambda e: -e["load_order"]))
    triggers = [
        f"More than {_pct(plan.failure_threshold_pct)}% of a run's rows fail: the run aborts"
        f"{automatic}.",
        (
            f"A blocking post-migration check fails ({', '.join(blocking)})."
            if blocking
            else "A post-migration check reports widespread integrity problems."
        ),
        "Reconciliation does not add up: every source record must be loaded, failed or filtered.",
        "UAT finds show-stopping defects that cannot be fixed quickly.",
        "The target becomes unstable or core business functions are impaired.",
    ]
    steps = [
        "Pause or cancel the run; no new batch starts and running batches finish or stop.",
        "An operator requests the rollback (one action, recorded in the audit log); a dry run "
        "wrote nothing and needs none.",
        "Every committed batch is undone newest first from the target's ledger, one target "
        "transaction per batch: inserted keys are deleted, the before-images of rows an upsert "
        f"overwrote are restored and key-map rows are removed (entity order: {order or '—'}).",
        "The rollback is idempotent and resumable: an interrupted rollback continues with the "
        "batches still in the ledger.",
        "Verification: each target table's row count and order-independent checksum are "
        "compared with the values taken before the run; any difference is reported as a "
        "mismatch.",
        "Find the root cause in the run log and the error queue before the next attempt.",
    ]
    return {"triggers": triggers, "steps": steps}


def _milestone_rows(milestones: list) -> list[dict]:
    return [
        {
            "phase": m.phase,
            "start": m.start,
            "end": m.end,
            "deliverable": m.deliverable,
            "weeks": duration_text((m.end - m.start).days + 1),
        }
        for m in milestones
    ]


def plan_document_context(*, plan: Plan) -> dict:
    """Everything the plan document shows, as plain data (no secrets). Read-only."""
    plan = plan_detail(slug=plan.slug)
    entities = sorted(plan.entities.all(), key=lambda e: (e.load_order, e.name))
    # Lookup tables are Appendix A (A.1, A.2, … by name); each field names the ones it uses.
    lookup_number = "A"
    uses = _lookup_uses(entities)
    lookups = [
        _lookup_section(lk, f"{lookup_number}.{i}", uses.get(lk.name, []))
        for i, lk in enumerate(sorted(plan.lookups.all(), key=lambda x: x.name), 1)
    ]
    by_name = {lk["name"]: lk for lk in lookups}
    sections = [_entity_section(e, f"3.{i}", by_name) for i, e in enumerate(entities, start=1)]
    milestones = sorted(plan.milestones.all(), key=lambda m: (m.position, m.start, m.id))
    validation = _validation(plan)
    uat = _uat(plan)
    return {
        "plan": plan,
        "threshold": _pct(plan.failure_threshold_pct),
        "source": _system(plan.source),
        "target": _system(plan.target),
        "counts": {
            "entities": len(sections),
            "fields": sum(len(s["rows"]) for s in sections),
            "lookups": len(lookups),
            "pre": len(validation["pre"]),
            "post": len(validation["post"]),
            "uat": len(uat),
            "milestones": len(milestones),
        },
        "entities": sections,
        "lookup_number": lookup_number,
        "lookups": lookups,
        "lookup_rows_shown": LOOKUP_ROWS_SHOWN,
        "validation": validation,
        "rollback": _rollback(plan, sections, validation),
        "uat": uat,
        "signoff": _signoff(plan),
        "milestones": _milestone_rows(milestones),
        "timeline_svg": timeline_svg(milestones),
        "version": _version(plan),
        "generated_at": timezone.now(),
    }
