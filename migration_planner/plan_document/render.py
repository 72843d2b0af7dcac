"""The plan document rendered: standalone HTML, PDF (WeasyPrint) and Markdown."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from mappings.models import Plan

from .context import TEMPLATE, plan_document_context
from .words import _sentence, plural

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


_BR = "\x00br\x00"  # a line break inside a table cell; becomes <br> after HTML escaping


def _md(value: Any) -> str:
    text = "" if value is None else str(value).replace("\x00", "")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", _BR)


def _md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return [*out, ""]


def _md_scope(c: dict) -> list[str]:
    plan, n = c["plan"], c["counts"]
    return [
        f"# Data migration plan: {plan.name}",
        "",
        f"Generated {c['generated_at']:%Y-%m-%d %H:%M} UTC from **{c['version']['label']}**"
        + (f" (sha256 `{c['version']['hash']}`)" if c["version"]["current"] else "")
        + f". Plan status: {plan.get_status_display()}.",
        "",
        "## 1. Scope and executive summary",
        "",
        plan.description or "",
        "",
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
        "- **Entities included:** "
        + (
            ", ".join(
                f"{e['name']} ({e['source_table']} → {e['target_table']})" for e in c["entities"]
            )
            or "none yet"
        ),
        "",
    ]


def _md_systems(c: dict) -> list[str]:
    rows = [
        [label, s["name"], s["kind"], s["environment"], s["description"]]
        for label, s in (("Source", c["source"]), ("Target", c["target"]))
    ]
    return [
        "## 2. Systems",
        "",
        *_md_table(["Role", "System", "Kind", "Environment", "Description"], rows),
        "Connection settings and credentials are held encrypted in the application and are "
        "not part of this document.",
        "",
    ]


def _md_entity(e: dict) -> list[str]:
    facts = [
        f"key {e['source_key']}",
        f"load mode {e['load_mode']}",
        f"load order {e['load_order']}",
    ]
    facts += [f"external id {e['external_id']}"] if e["external_id"] else []
    facts += [f"only rows where {' and '.join(e['filters'])}"] if e["filters"] else []
    facts += [f"duplicates dropped on {e['dedupe_on']}"] if e["dedupe_on"] else []
    facts += [f"delta on {e['watermark_column']}"] if e["watermark_column"] else []
    rows = [[r["source_text"], r["target"], _md_transformation(r), r["notes"]] for r in e["rows"]]
    return [
        f"### {e['number']} {e['name']}: {e['source_table']} → {e['target_table']}",
        "",
        _sentence("; ".join(facts)),
        "",
        *([e["notes"], ""] if e["notes"] else []),
        *_md_table(["Source field(s)", "Target field", "Transformation", "Notes"], rows),
    ]


def _md_lookups(c: dict) -> list[str]:
    out = [
        f"## Appendix {c['lookup_number']}. Lookup tables",
        "",
        "Every entry of every lookup table the field mappings translate values through.",
        "",
    ]
    for lk in c["lookups"]:
        default = f" {lk['default_words']}" if lk["default_words"] else ""
        shown = f" {lk['entry_words']}, all listed."
        out += [
            f"### {lk['number']} {lk['name']}",
            "",
            f"{lk['description']}{default}{shown}",
            "",
            *_md_table(["Source value", "Target value"], lk["entries"]),
        ]
    return out if c["lookups"] else []


def _md_transformation(r: dict) -> str:
    refs = "".join(
        f" Lookup “{ref['name']}”: see Appendix {ref['number']} ({ref['entry_words']})."
        for ref in r["lookup_refs"]
    )
    return r["transformation"] + refs


def _md_checks(c: dict) -> list[str]:
    out = ["## 4. Validation plan", ""]
    for phase, title in (
        ("pre", "4.1 Pre-migration checks"),
        ("post", "4.2 Post-migration checks"),
    ):
        rows = [
            [
                r["name"],
                r["entity"] + (f".{r['column']}" if r["column"] else ""),
                r["check"],
                r["severity"] + ("" if r["enabled"] else " (disabled)"),
            ]
            for r in c["validation"][phase]
        ]
        out += [
            f"### {title}",
            "",
            *(
                _md_table(["Check", "On", "Passes when", "Severity"], rows)
                if rows
                else ["None defined.", ""]
            ),
        ]
    return out


def _md_rollback(c: dict) -> list[str]:
    return [
        "## 5. Rollback procedure",
        "",
        "### 5.1 Triggers",
        "",
        *[f"- {t}" for t in c["rollback"]["triggers"]],
        "",
        "### 5.2 Steps",
        "",
        *[f"{i}. {s}" for i, s in enumerate(c["rollback"]["steps"], 1)],
        "",
    ]


def _md_uat(c: dict) -> list[str]:
    rows = [[u["number"], u["title"], u["steps"], u["expected"], u["result"]] for u in c["uat"]]
    s = c["signoff"]
    if s is None:
        status = "Not signed off yet."
    else:
        status = (
            f"{s['decision']} by {s['approver']} on {s['at']:%Y-%m-%d} for version "
            f"{s['version']} (sha256 `{s['hash']}`)"
            + (
                f"; voided {s['voided_at']:%Y-%m-%d}: {s['voided_reason']}"
                if s["voided_at"]
                else ""
            )
            + (
                f"; {s['rolled_back_since']} — the sign-off stands, its report's verdict no "
                "longer holds"
                if s["rolled_back_since"]
                else ""
            )
            + (f". Reason: {s['reason']}" if s["reason"] else "")
            + "."
        )
    return [
        "## 6. User acceptance testing and sign-off",
        "",
        *(
            _md_table(["#", "Test case", "Steps", "Expected result", "Latest result"], rows)
            if rows
            else ["No UAT test cases yet.", ""]
        ),
        f"**Sign-off:** {status}",
        "",
    ]


def _md_gantt(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    first = min(r["start"] for r in rows)
    width = max(len(r["phase"]) for r in rows)
    bars = [
        r["phase"].ljust(width)
        + " "
        + " " * ((r["start"] - first).days // 7)
        + "█" * max(1, round(((r["end"] - r["start"]).days + 1) / 7))
        for r in rows
    ]
    return ["```", *bars, "```", ""]


def _md_timeline(c: dict) -> list[str]:
    rows = [
        [m["phase"], m["weeks"], f"{m['start']:%Y-%m-%d}", f"{m['end']:%Y-%m-%d}", m["deliverable"]]
        for m in c["milestones"]
    ]
    version = c["version"]
    return [
        "## 7. Timeline and key milestones",
        "",
        *(
            _md_table(["Phase", "Duration", "Start", "End", "Key milestones"], rows)
            if rows
            else ["No milestones yet.", ""]
        ),
        *_md_gantt(c["milestones"]),
        f"Generated from {version['label']}"
        + (f" (sha256 `{version['hash']}`)." if version["current"] else ".")
        + (f" {version['note']}" if version["note"] else ""),
        "",
    ]


def plan_document_markdown(*, plan: Plan) -> str:
    """The plan document as Markdown (GitHub tables), same sections as the HTML. Read-only."""
    c = plan_document_context(plan=plan)
    lines = [*_md_scope(c), *_md_systems(c), "## 3. Field mapping", ""]
    for entity in c["entities"]:
        lines += _md_entity(entity)
    lines += [*_md_checks(c), *_md_rollback(c), *_md_uat(c), *_md_timeline(c), *_md_lookups(c)]
    # Markdown passes raw HTML through: every < and > a user typed is shown, never run.
    text = "\n".join(lines).replace("<", "&lt;").replace(">", "&gt;")
    return text.replace(_BR, "<br>").rstrip("\n") + "\n"
