"""The plan document: the customer-facing migration plan generated from the live plan.

``plan_document_context`` gathers everything (read-only); the renderers turn it into printable
HTML (standalone, inline CSS, no scripts), Markdown, or PDF (WeasyPrint). Rule chains are put
into words from the rule registry, so the document always says what the engine will do.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from migration_planner.lib.errors import ApplicationError
from runs.engine.rules import REGISTRY, RuleParamError, validate_params
from validation.models import SignOff, UATResult

from .models import Plan
from .selectors import plan_detail
from .services import plan_content_hash, snapshot_content

LOOKUP_ROWS_SHOWN = None  # every entry is printed: a signer approves the whole table
TEMPLATE = "mappings/document/plan_document.html"

# --------------------------------------------------------------------------- rules in words


def _q(value: Any) -> str:
    return f"“{value}”"


_MISSING = {"default": "unmapped values get the table's default",
            "fail": "unmapped values fail", "keep": "unmapped values kept"}
_CASTS = {"int": "integer", "bool": "true/false", "text": "text", "decimal": "decimal"}

# A short phrase per registry rule, from its checked parameters.
_PHRASES: dict[str, Any] = {
    "copy": lambda p: "copy unchanged",
    "trim": lambda p: "trim whitespace" + ("" if p["empty_to_null"] else " (keep empty)"),
    "upper": lambda p: "upper case",
    "lower": lambda p: "lower case",
    "title": lambda p: "title case",
    "concat": lambda p: f"join the sources with {_q(p['separator'])}",
    "coalesce": lambda p: "take the first non-empty source",
    "split": lambda p: f"split on {_q(p['separator'])} and keep "
    + ("the last part" if p["index"] == -1 else f"part {p['index'] + 1}"
       if p["index"] >= 0 else f"part {p['index']} from the end"),
    "value_map": lambda p: f"map through lookup table {_q(p['lookup'])} ("
    + _MISSING[p["on_missing"]] + (", ignoring case" if p["ignore_case"] else "") + ")",
    "regex_replace": lambda p: (f"replace /{p['pattern']}/ with {_q(p['replacement'])}"
                                if p["replacement"] else f"remove /{p['pattern']}/"),
    "regex_validate": lambda p: f"fail values not matching /{p['pattern']}/"
    + (f" ({p['message']})" if p["message"] else ""),
    "phone_format": lambda p: "format as (XXX) XXX-XXXX",
    "email": lambda p: "lower-case and validate as an e-mail address",
    "parse_date": lambda p: f"parse dates ({', '.join(p['formats'])}) to ISO "
    + ("date" if p["output"] == "date" else "date and time"),
    "cast": lambda p: "cast to " + _CASTS[p["to"]]
    + (f" with {p['scale']} places" if p["to"] == "decimal" else "")
    + (f" (removing {_q(p['thousands_separator'])})" if p["thousands_separator"] else ""),
    "truncate": lambda p: (f"fail values longer than {p['length']} characters"
                           if p["on_overflow"] == "fail" else f"cut to {p['length']} characters"),
    "default_if_null": lambda p: f"use {_q(p['value'])} when empty",
    "constant": lambda p: f"set to {_q(p['value'])}",
    "uuid_from_key": lambda p: "derive a UUID from the "
    + ("source key" if p["from"] == "source_key" else "value")
    + (f" (scope {_q(p['scope'])})" if p["scope"] else ""),
    "hash": lambda p: "replace with its SHA-256 hash" + (" (salted)" if p["salt"] else ""),
    "mask": lambda p: f"mask all but the last {p['keep_last']} characters",
    "reference_lookup": lambda p: f"replace the old key with the new {_q(p['entity'])} id",
}


def rule_step_words(rule: str, params: dict | None) -> str:
    """One rule step in words, e.g. ``fail values longer than 80 characters``. Pure."""
    try:
        checked = validate_params(rule, params)
    except RuleParamError:
        return f"{rule} (invalid parameters)"
    if rule in _PHRASES:
        return _PHRASES[rule](checked)
    described = REGISTRY[rule].description.rstrip(".")  # a rule added without a phrase
    given = ", ".join(f"{k} {_q(v)}" for k, v in (params or {}).items())
    return described[0].lower() + described[1:] + (f" ({given})" if given else "")


def rule_chain_words(steps: list[tuple[str, dict]], *, sources: int = 1,
                     default: str | None = None, required: bool = False) -> str:
    """A whole chain as one sentence: ``Trim whitespace, then title case, then …``. Pure."""
    parts = [rule_step_words(rule, params) for rule, params in steps]
    if not parts:
        parts = ["direct map"] if sources else ["no source (left empty)"]
    text = ", then ".join(parts)
    text = text[0].upper() + text[1:]
    if default is not None:
        text += f"; {_q(default)} when empty"
    return text + ("; required" if required else "") + "."


# --------------------------------------------------------------------------- context

_OPS = {"eq": "=", "ne": "≠", "in": "is one of", "not_in": "is not one of", "is_null": "is empty",
        "not_null": "is not empty", "gt": ">", "ge": "≥", "lt": "<", "le": "≤",
        "regex": "matches"}
_CHECKS = {
    "row_count_range": "between {min:,} and {max:,} rows",
    "unique": "no duplicate values",
    "completeness": "at least {min_pct}% filled",
    "format": "values match the {pattern} format",
    "row_count_match": "target rows equal source rows (tolerance {tolerance_pct}%)",
    "sum_match": "source and target sums equal (tolerance {tolerance})",
    "category_count_match": "counts per value equal in source and target",
    "sample_compare": "a {pct}% random sample compared field by field",
    "referential_integrity": "every value points at a migrated {parent} row",
    "checksum": "ledger row hashes equal the rows in the target",
}


def _filter_words(flt: dict) -> str:
    op = _OPS.get(flt.get("op"), flt.get("op"))
    value = flt.get("value")
    shown = "" if flt.get("op") in ("is_null", "not_null") else f" {_q(value)}"
    return f"{flt.get('column')} {op}{shown}"


def _check_words(rule) -> str:
    params = rule.params or {}
    try:
        return _CHECKS[rule.kind].format(**params)
    except (KeyError, ValueError, IndexError):
        given = ", ".join(f"{k} = {v}" for k, v in sorted(params.items()))
        return rule.get_kind_display() + (f" ({given})" if given else "")


def _field_row(field) -> dict:
    steps = [(s.rule, s.params) for s in sorted(field.steps.all(),
                                                key=lambda s: (s.position, s.id))]
    sources = list(field.source_columns or [])
    return {
        "sources": sources, "source_text": ", ".join(sources) or "—",
        "target": field.target_column, "required": field.required,
        "transformation": rule_chain_words(steps, sources=len(sources),
                                           default=field.default_value,
                                           required=field.required),
        "notes": field.notes,
    }


def _entity_section(entity, number: str) -> dict:
    fields = sorted(entity.fields.all(), key=lambda f: (f.position, f.id))
    return {
        "number": number, "name": entity.name, "source_table": entity.source_table,
        "target_table": entity.target_table, "source_key": ", ".join(entity.source_key or []),
        "target_key": entity.target_key, "external_id": entity.external_id,
        "load_mode": entity.get_load_mode_display(), "load_order": entity.load_order,
        "filters": [_filter_words(f) for f in entity.filters or []],
        "dedupe_on": ", ".join(entity.dedupe_on or []),
        "watermark_column": entity.watermark_column, "notes": entity.notes,
        "rows": [_field_row(f) for f in fields],
    }


def _lookup_section(lookup, number: str) -> dict:
    entries = sorted(lookup.entries.all(), key=lambda e: e.key)
    return {"number": number, "name": lookup.name, "description": lookup.description,
            "default": lookup.default_value, "count": len(entries),
            "entries": [(e.key, e.value) for e in entries], "truncated": False}


def _system(system) -> dict:
    """What the document may say about a system: never its secret or connection details."""
    return {"name": system.name, "kind": system.get_kind_display(),
            "environment": system.get_environment_display(), "role": system.get_role_display(),
            "description": system.description}


def _version(plan: Plan) -> dict:
    latest = max(plan.versions.all(), key=lambda v: v.number, default=None)
    try:
        current = plan_content_hash(plan=plan)
    except ApplicationError:
        current = None
    if latest is None:
        return {"label": "unversioned draft", "number": None, "hash": "", "current": False,
                "note": "The plan has no frozen version yet."}
    matches = snapshot_content(latest.snapshot) == current
    label = f"version {latest.number}" if matches else "unversioned draft"
    note = ("" if matches else f"The plan was edited after version {latest.number}; "
            "freeze a new version before sign-off.")
    return {"label": label, "number": latest.number, "hash": latest.content_hash,
            "current": matches, "note": note, "created_at": latest.created_at}


def _signoff(plan: Plan) -> dict | None:
    signoff = (SignOff.objects.filter(plan=plan).select_related("version", "approver")
               .order_by("-created_at").first())
    if signoff is None:
        return None
    return {"decision": signoff.get_decision_display(), "approved": signoff.is_valid,
            "approver": signoff.approver.get_username(), "at": signoff.created_at,
            "version": signoff.version.number, "hash": signoff.version.content_hash,
            "reason": signoff.reason, "voided_at": signoff.voided_at,
            "voided_reason": signoff.voided_reason}


def _uat(plan: Plan) -> list[dict]:
    latest: dict[int, Any] = {}
    results = UATResult.objects.filter(case__plan=plan).select_related("tester")
    for result in results.order_by("case_id", "-recorded_at"):
        latest.setdefault(result.case_id, result)
    return [{"number": i, "title": c.title, "steps": c.steps, "expected": c.expected_result,
             "result": (latest[c.pk].get_outcome_display() if c.pk in latest else "not run"),
             "comment": latest[c.pk].comment if c.pk in latest else ""}
            for i, c in enumerate(plan.uat_cases.order_by("position", "id"), start=1)]


def _validation(plan: Plan) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"pre": [], "post": []}
    for rule in plan.validation_rules.order_by("name"):
        out[rule.phase].append({
            "name": rule.name, "kind": rule.get_kind_display(), "entity": rule.entity,
            "column": rule.column, "check": _check_words(rule),
            "severity": rule.get_severity_display(), "enabled": rule.enabled,
        })
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
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SVG_W}" height="{height}" '
             f'viewBox="0 0 {_SVG_W} {height}" role="img" aria-label="Timeline" '
             'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">']
    months = _month_starts(first, last)
    step = max(1, len(months) // 8)
    for month in months[::step]:
        x = _SVG_LABEL + (month - first).days * scale
        parts.append(f'<line x1="{x:.1f}" y1="{_SVG_HEAD - 12}" x2="{x:.1f}" y2="{height}" '
                     'stroke="#ccc" stroke-dasharray="3,3"/>'
                     f'<text x="{x + 3:.1f}" y="{_SVG_HEAD - 14}" fill="#555">'
                     f'{month:%b %Y}</text>')
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
            f'{m.start:%Y-%m-%d} – {m.end:%Y-%m-%d}</title></rect>')
        if width > 46:
            parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}" fill="#fff">{weeks}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- rollback


def _rollback(plan: Plan, entities: list[dict], validation: dict) -> dict:
    """Triggers and steps of the real mechanism: ledger per batch, reverse undo, checksums."""
    blocking = [r["name"] for r in validation["post"] if r["severity"] == "Blocking"]
    automatic = ("; the run is then rolled back automatically" if plan.rollback_on_threshold
                 else "; the operator decides on rollback")
    order = ", ".join(e["name"] for e in sorted(entities, key=lambda e: -e["load_order"]))
    triggers = [
        f"More than {_pct(plan.failure_threshold_pct)}% of a run's rows fail: the run aborts"
        f"{automatic}.",
        (f"A blocking post-migration check fails ({', '.join(blocking)})." if blocking else
         "A post-migration check reports widespread integrity problems."),
        "Reconciliation does not add up: every source record must be loaded, failed or "
        "filtered.",
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


def plural(n: int, singular: str, many: str | None = None) -> str:
    """``1 entity`` / ``3 entities`` (pure)."""
    return f"{n:,} {singular if n == 1 else (many or singular + 's')}"


def duration_text(days: int, *, short: bool = False) -> str:
    """A duration in whole weeks and days: ``2 weeks``, ``1 week 5 days`` (``1 wk 5 d``)."""
    weeks, rest = divmod(days, 7)
    if short:
        parts = [f"{weeks} wk"] * bool(weeks) + [f"{rest} d"] * bool(rest)
    else:
        parts = [plural(weeks, "week")] * bool(weeks) + [plural(rest, "day")] * bool(rest)
    return " ".join(parts) or ("0 d" if short else "0 days")


def _sentence(text: str) -> str:
    """First letter up, the rest as written (names keep their case), full stop (pure)."""
    return (text[:1].upper() + text[1:] + ".") if text else ""


def _pct(value: Decimal | float) -> str:
    return f"{Decimal(value).normalize():f}"


def _milestone_rows(milestones: list) -> list[dict]:
    return [{"phase": m.phase, "start": m.start, "end": m.end, "deliverable": m.deliverable,
             "weeks": duration_text((m.end - m.start).days + 1)} for m in milestones]


def plan_document_context(*, plan: Plan) -> dict:
    """Everything the plan document shows, as plain data (no secrets). Read-only."""
    plan = plan_detail(slug=plan.slug)
    entities = sorted(plan.entities.all(), key=lambda e: (e.load_order, e.name))
    sections = [_entity_section(e, f"3.{i}") for i, e in enumerate(entities, start=1)]
    lookup_number = f"3.{len(sections) + 1}"
    lookups = [_lookup_section(lk, f"{lookup_number}.{i}")
               for i, lk in enumerate(sorted(plan.lookups.all(), key=lambda x: x.name), 1)]
    milestones = sorted(plan.milestones.all(), key=lambda m: (m.position, m.start, m.id))
    validation = _validation(plan)
    uat = _uat(plan)
    return {
        "plan": plan, "threshold": _pct(plan.failure_threshold_pct),
        "source": _system(plan.source), "target": _system(plan.target),
        "counts": {"entities": len(sections), "fields": sum(len(s["rows"]) for s in sections),
                   "lookups": len(lookups), "pre": len(validation["pre"]),
                   "post": len(validation["post"]), "uat": len(uat),
                   "milestones": len(milestones)},
        "entities": sections, "lookup_number": lookup_number, "lookups": lookups,
        "lookup_rows_shown": LOOKUP_ROWS_SHOWN, "validation": validation,
        "rollback": _rollback(plan, sections, validation), "uat": uat,
        "signoff": _signoff(plan), "milestones": _milestone_rows(milestones),
        "timeline_svg": timeline_svg(milestones), "version": _version(plan),
        "generated_at": timezone.now(),
    }


# --------------------------------------------------------------------------- renderers


def plan_document_html(*, plan: Plan) -> str:
    """The plan document as one standalone printable HTML page (inline CSS, no scripts)."""
    return render_to_string(TEMPLATE, plan_document_context(plan=plan))


def _refuse_fetch(url: str, *args, **kwargs) -> dict:
    raise ValueError(f"the plan document loads no external resources ({url[:40]})")


def plan_document_pdf(*, plan: Plan) -> bytes:
    """The plan document as PDF bytes, rendered by WeasyPrint from the HTML (no network)."""
    from weasyprint import HTML  # heavy import, only when a PDF is asked for

    return HTML(string=plan_document_html(plan=plan), url_fetcher=_refuse_fetch).write_pdf()


# --------------------------------------------------------------------------- Markdown


def _md(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return [*out, ""]


def _md_scope(c: dict) -> list[str]:
    plan, n = c["plan"], c["counts"]
    return [
        f"# Data migration plan: {plan.name}", "",
        f"Generated {c['generated_at']:%Y-%m-%d %H:%M} UTC from **{c['version']['label']}**"
        + (f" (sha256 `{c['version']['hash']}`)" if c["version"]["current"] else "")
        + f". Plan status: {plan.get_status_display()}.", "",
        "## 1. Scope and executive summary", "", plan.description or "", "",
        f"- **Source system:** {c['source']['name']} ({c['source']['kind']}, "
        f"{c['source']['environment']})",
        f"- **Target system:** {c['target']['name']} ({c['target']['kind']}, "
        f"{c['target']['environment']})",
        f"- **Strategy:** {plan.get_strategy_display()}; batches of {plan.batch_size:,} rows, "
        f"{plan.parallelism} in parallel; failure threshold {c['threshold']}%",
        f"- **Scope:** {plural(n['entities'], 'entity', 'entities')}, "
        f"{plural(n['fields'], 'mapped field')}, {plural(n['lookups'], 'lookup table')}, "
        f"{n['pre']} pre- and {plural(n['post'], 'post-migration check')}, "
        f"{plural(n['uat'], 'UAT case')}",
        "- **Entities included:** " + (", ".join(
            f"{e['name']} ({e['source_table']} → {e['target_table']})" for e in c["entities"])
            or "none yet"), "",
    ]


def _md_systems(c: dict) -> list[str]:
    rows = [[label, s["name"], s["kind"], s["environment"], s["description"]]
            for label, s in (("Source", c["source"]), ("Target", c["target"]))]
    return ["## 2. Systems", "",
            *_md_table(["Role", "System", "Kind", "Environment", "Description"], rows),
            "Connection settings and credentials are held encrypted in the application and are "
            "not part of this document.", ""]


def _md_entity(e: dict) -> list[str]:
    facts = [f"key {e['source_key']}", f"load mode {e['load_mode']}",
             f"load order {e['load_order']}"]
    facts += [f"external id {e['external_id']}"] if e["external_id"] else []
    facts += [f"only rows where {' and '.join(e['filters'])}"] if e["filters"] else []
    facts += [f"duplicates dropped on {e['dedupe_on']}"] if e["dedupe_on"] else []
    facts += [f"delta on {e['watermark_column']}"] if e["watermark_column"] else []
    rows = [[r["source_text"], r["target"], r["transformation"], r["notes"]] for r in e["rows"]]
    return [f"### {e['number']} {e['name']}: {e['source_table']} → {e['target_table']}", "",
            _sentence("; ".join(facts)), "", *([e["notes"], ""] if e["notes"] else []),
            *_md_table(["Source field(s)", "Target field", "Transformation", "Notes"], rows)]


def _md_lookups(c: dict) -> list[str]:
    out = [f"### {c['lookup_number']} Lookup tables", ""]
    for lk in c["lookups"]:
        default = f" Unmapped values default to “{lk['default']}”." if lk["default"] else ""
        shown = f" {plural(lk['count'], 'entry', 'entries')}, all listed."
        out += [f"#### {lk['number']} {lk['name']}", "", f"{lk['description']}{default}{shown}",
                "", *_md_table(["Source value", "Target value"], lk["entries"])]
    return out if c["lookups"] else []


def _md_checks(c: dict) -> list[str]:
    out = ["## 4. Validation plan", ""]
    for phase, title in (("pre", "4.1 Pre-migration checks"), ("post", "4.2 Post-migration "
                                                                          "checks")):
        rows = [[r["name"], r["entity"] + (f".{r['column']}" if r["column"] else ""),
                 r["check"], r["severity"] + ("" if r["enabled"] else " (disabled)")]
                for r in c["validation"][phase]]
        out += [f"### {title}", "", *(_md_table(["Check", "On", "Passes when", "Severity"], rows)
                                      if rows else ["None defined.", ""])]
    return out


def _md_rollback(c: dict) -> list[str]:
    return ["## 5. Rollback procedure", "", "### 5.1 Triggers", "",
            *[f"- {t}" for t in c["rollback"]["triggers"]], "", "### 5.2 Steps", "",
            *[f"{i}. {s}" for i, s in enumerate(c["rollback"]["steps"], 1)], ""]


def _md_uat(c: dict) -> list[str]:
    rows = [[u["number"], u["title"], u["steps"], u["expected"], u["result"]] for u in c["uat"]]
    s = c["signoff"]
    if s is None:
        status = "Not signed off yet."
    else:
        status = (f"{s['decision']} by {s['approver']} on {s['at']:%Y-%m-%d} for version "
                  f"{s['version']} (sha256 `{s['hash']}`)"
                  + (f"; voided {s['voided_at']:%Y-%m-%d}: {s['voided_reason']}"
                     if s["voided_at"] else "") + (f". Reason: {s['reason']}" if s["reason"]
                                                   else "") + ".")
    return ["## 6. User acceptance testing and sign-off", "",
            *(_md_table(["#", "Test case", "Steps", "Expected result", "Latest result"], rows)
              if rows else ["No UAT test cases yet.", ""]),
            f"**Sign-off:** {status}", ""]


def _md_gantt(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    first = min(r["start"] for r in rows)
    width = max(len(r["phase"]) for r in rows)
    bars = [r["phase"].ljust(width) + " " + " " * ((r["start"] - first).days // 7)
            + "█" * max(1, round(((r["end"] - r["start"]).days + 1) / 7)) for r in rows]
    return ["```", *bars, "```", ""]


def _md_timeline(c: dict) -> list[str]:
    rows = [[m["phase"], m["weeks"], f"{m['start']:%Y-%m-%d}", f"{m['end']:%Y-%m-%d}",
             m["deliverable"]] for m in c["milestones"]]
    version = c["version"]
    return ["## 7. Timeline and key milestones", "",
            *(_md_table(["Phase", "Duration", "Start", "End", "Key milestones"], rows)
              if rows else ["No milestones yet.", ""]),
            *_md_gantt(c["milestones"]),
            f"Generated from {version['label']}"
            + (f" (sha256 `{version['hash']}`)." if version["current"] else ".")
            + (f" {version['note']}" if version["note"] else ""), ""]


def plan_document_markdown(*, plan: Plan) -> str:
    """The plan document as Markdown (GitHub tables), same sections as the HTML. Read-only."""
    c = plan_document_context(plan=plan)
    lines = [*_md_scope(c), *_md_systems(c), "## 3. Field mapping", ""]
    for entity in c["entities"]:
        lines += _md_entity(entity)
    lines += [*_md_lookups(c), *_md_checks(c), *_md_rollback(c), *_md_uat(c), *_md_timeline(c)]
    return "\n".join(lines).rstrip("\n") + "\n"
