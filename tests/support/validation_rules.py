"""Validation rules for tests: the phase follows the kind, as the rules page offers them."""

from __future__ import annotations

from validation.models import ValidationRule

PRE_KINDS = {"row_count_range", "unique", "completeness", "format"}


def validation_rule(plan, name, kind, entity, column="", severity="blocking", **params):
    """A saved, enabled rule of ``kind`` on ``entity``/``column`` with ``params``."""
    phase = "pre" if kind in PRE_KINDS else "post"
    return ValidationRule.objects.create(
        plan=plan,
        name=name,
        phase=phase,
        kind=kind,
        entity=entity,
        column=column,
        params=params,
        severity=severity,
    )
