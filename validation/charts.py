"""Server-rendered SVG charts for the report (no JavaScript; works in the PDF export too)."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

SEGMENTS = (
    ("loaded", "#1e7b45"),
    ("failed", "#b3261e"),
    ("filtered", "#a86400"),
    ("duplicates", "#6b7a8c"),
)


def bar_chart(items: list[dict], *, width: int = 560, title: str = "") -> SafeString:
    """Horizontal bars of {label, value}; an empty list renders a short note."""
    if not items:
        return mark_safe('<p class="muted">Nothing to chart.</p>')
    top = max(i["value"] for i in items) or 1
    label_w, row_h = 180, 22
    height = row_h * len(items) + 8
    bars = []
    for n, item in enumerate(items):
        y = 4 + n * row_h
        w = max(1, int((width - label_w - 60) * item["value"] / top))
        bars.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(str(item['label'])[:28])}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{w}" height="{row_h - 6}" rx="2"/>'
            f'<text x="{label_w + w + 4}" y="{y + 14}" class="bn">{item["value"]:,}</text>'
        )
    return mark_safe(  # noqa: S308 - labels escaped above; the rest are numbers
        f'<svg class="bars" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}">{"".join(bars)}</svg>'
    )


def accounting_chart(lines: list[dict], *, width: int = 640) -> SafeString:
    """Per entity, a stacked bar of loaded / failed / filtered / duplicate against the source."""
    if not lines:
        return mark_safe('<p class="muted">No entity in this run.</p>')
    top = max(max(line["source"], line["accounted"]) for line in lines) or 1
    label_w, row_h, scale = 110, 30, (width - 110 - 90) / top
    parts = []
    for n, line in enumerate(lines):
        y, x = 26 + n * row_h, label_w
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(line['entity'])}</text>"
        )
        for key, colour in SEGMENTS:
            w = line[key] * scale
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" '
                    f'style="fill:{colour}"><title>{key}: {line[key]:,}</title></rect>'
                )
            x += w
        src = label_w + line["source"] * scale
        mark = "#b3261e" if not line["balanced"] else "#1c2430"
        parts.append(
            f'<line x1="{src:.1f}" x2="{src:.1f}" y1="{y - 3}" y2="{y + 23}" '
            f'stroke="{mark}" stroke-width="2"/>'
            f'<text x="{src + 5:.1f}" y="{y + 15}" class="bn">{line["source"]:,}'
            f"{'' if line['balanced'] else ' ≠'}</text>"
        )
    legend = "".join(
        f'<rect x="{label_w + i * 110}" y="4" width="10" height="10" style="fill:{c}"/>'
        f'<text x="{label_w + 14 + i * 110}" y="13">{k}</text>'
        for i, (k, c) in enumerate(SEGMENTS)
    )
    height = 30 + row_h * len(lines)
    return mark_safe(  # noqa: S308 - entity names escaped above; the rest are numbers
        f'<svg class="bars acct" role="img" aria-label="Accounting per entity" viewBox="0 0 '
        f'{width} {height}" width="{width}" height="{height}">{legend}{"".join(parts)}</svg>'
    )
