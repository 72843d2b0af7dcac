"""Post-migration reconciliation of one run: accounting, key-level diff (ledger vs target),
and the plan's post-migration checks computed THROUGH THE MAPPING (source values transformed
with the run's own frozen rules before they are compared with the target).

A package by role: ``context`` (what the checks share, accounting, key diffs), ``expected``
(the source side through the rules), ``checks`` (each post check against the target). Every
name the module had is importable from here."""

from __future__ import annotations

from .checks import (
    SAMPLE_CHUNK,
    _category_outcome,
    _count_outcome,
    _orphans,
    _post_check_in_memory,
    _sample,
    _sample_outcome,
    _sample_rows,
    _sum_outcome,
    _target_frame,
    _text,
    aggregates_first,
    post_check,
)
from .context import LISTED_KEYS, RunContext, accounting, diff_summary, failures_by, key_diff
from .expected import (
    REPORT_CHUNK,
    Expected,
    SampleSpec,
    _aggregate,
    _counts,
    _decimal,
    _expected_chunks,
    _failed_keys,
    _post_needs,
    _range_part,
    chunk_size,
    expected_aggregate,
)

__all__ = [
    "LISTED_KEYS",
    "REPORT_CHUNK",
    "SAMPLE_CHUNK",
    "Expected",
    "RunContext",
    "SampleSpec",
    "_aggregate",
    "_category_outcome",
    "_count_outcome",
    "_counts",
    "_decimal",
    "_expected_chunks",
    "_failed_keys",
    "_orphans",
    "_post_check_in_memory",
    "_post_needs",
    "_range_part",
    "_sample",
    "_sample_outcome",
    "_sample_rows",
    "_sum_outcome",
    "_target_frame",
    "_text",
    "accounting",
    "aggregates_first",
    "chunk_size",
    "diff_summary",
    "expected_aggregate",
    "failures_by",
    "key_diff",
    "post_check",
]
