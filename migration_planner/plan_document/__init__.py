"""The plan document: the customer-facing migration plan generated from the live plan.

It shows several apps at once (the plan's mappings and checks, its sign-off and UAT results),
so it lives above them. ``context`` gathers everything (read-only); ``render`` turns it into
printable HTML (standalone, inline CSS, no scripts), Markdown, or PDF (WeasyPrint); ``words``
puts rule chains into words from the rule registry, so the document always says what the
engine will do.
"""

from .context import LOOKUP_ROWS_SHOWN, TEMPLATE, plan_document_context, timeline_svg
from .render import plan_document_html, plan_document_markdown, plan_document_pdf
from .words import duration_text, plural, rule_chain_words, rule_step_words

__all__ = [
    "LOOKUP_ROWS_SHOWN",
    "TEMPLATE",
    "duration_text",
    "plan_document_context",
    "plan_document_html",
    "plan_document_markdown",
    "plan_document_pdf",
    "plural",
    "rule_chain_words",
    "rule_step_words",
    "timeline_svg",
]
