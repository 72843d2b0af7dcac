"""Profiling suggestions applied to a field: what the chain would become, then the steps added.

``column_suggestions`` recomputes a source column's suggestions from a fresh sample (the page
never sends rule parameters back, only which suggestion); ``suggestion_preview`` runs the
current and the resulting chain on the column's most frequent values (read-only);
``field_suggestion_apply`` appends the steps through ``step_add`` (audited, in the history).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from django.db import transaction

from migration_planner.lib.errors import ApplicationError
from runs.engine.rules import RuleContext, RuleParamError, run_step, to_python

from .models import EntityMapping, FieldMapping, RuleStep
from .profiling import SAMPLE_ROWS, ColumnProfile, RuleSuggestion, profile_column
from .schema import sample_frame, system_table
from .services import plan_snapshot_build
from .services_edit import step_add

PREVIEW_VALUES = 8  # rows shown: values the steps change first
EXAMPLES = 500  # distinct values run through the chain
MAPPING_RULES = frozenset({"value_map", "reference_lookup"})  # translate values: end a chain


@dataclass
class SuggestionPreview:
    field: FieldMapping
    suggestion: RuleSuggestion
    current: list[tuple[str, dict]]
    added: list[tuple[str, dict]]
    # in, result now, its failure ("rule: message"), result after, its failure
    rows: list[tuple[str | None, str | None, str | None, str | None, str | None]]
    changed: int = 0  # distinct values whose outcome (value or failure) the steps change
    tried: int = 0  # distinct values run through the chain
    at: int | None = None  # where the added steps go in the chain (None: at its end)

    @property
    def before_rule(self) -> str:
        """The mapping step the added steps go in before ("" when they go at the end)."""
        at = len(self.current) if self.at is None else self.at
        return self.current[at][0] if at < len(self.current) else ""

    @property
    def chain_after(self) -> list[tuple[str, dict, bool]]:
        """The chain once applied: (rule, params, added?) in order."""
        at = len(self.current) if self.at is None else self.at
        return (
            [(r, p, False) for r, p in self.current[:at]]
            + [(r, p, True) for r, p in self.added]
            + [(r, p, False) for r, p in self.current[at:]]
        )


def column_profile(*, entity: EntityMapping, column: str) -> ColumnProfile:
    """Profile one source column of the entity's table (bounded sample), its distinct values
    kept in ``examples`` for previews; read-only; raises ApplicationError for a column the
    table lacks."""
    plan = entity.plan
    info = system_table(plan.source, entity.source_table)
    if column not in info.column_names:
        raise ApplicationError(
            f"The source table “{entity.source_table}” has no column “{column}”.", field="column"
        )
    frame = sample_frame(
        plan.source, entity.source_table, [column], limit=SAMPLE_ROWS, key=info.primary_key
    )
    profile = profile_column(column, frame[column])
    profile.examples = frame[column].dropna().drop_duplicates().head(EXAMPLES).tolist()
    return profile


def column_suggestion(*, profile: ColumnProfile, index: int, label: str) -> RuleSuggestion:
    """The ``index``-th suggestion, checked against the label the user saw; ApplicationError
    when the profile changed since (the data moved under the page)."""
    items = profile.suggestions
    if not 0 <= index < len(items) or items[index].label != label:
        raise ApplicationError(
            f"The suggestions for “{profile.name}” changed since the page was shown: look at "
            "the profile again.",
            field="suggestion",
        )
    return items[index]


def suggestion_refusal(*, rules: list[str], suggestion: RuleSuggestion) -> str | None:
    """Why the suggestion does not fit a chain running ``rules`` (pure), else None: a step
    type the chain already runs, or a second mapping step (value_map / reference_lookup).
    Other suggestions fit a chain holding a mapping step: they go in before it."""
    again = [rule for rule, _ in suggestion.steps if rule in rules]
    if again:
        return f"the rule chain already runs {', '.join(again)}"
    mapping = [rule for rule in rules if rule in MAPPING_RULES]
    if mapping and any(rule in MAPPING_RULES for rule, _ in suggestion.steps):
        return f"the rule chain already maps values with {mapping[0]}"
    return None


def insert_at(rules: list[str]) -> int:
    """Where a suggestion's steps go in a chain running ``rules`` (pure): before its first
    mapping step (so they clean the values the map translates), else at the end."""
    return next((i for i, rule in enumerate(rules) if rule in MAPPING_RULES), len(rules))


def field_rules(field: FieldMapping) -> list[str]:
    """The rule types of the field's chain, in order (read-only)."""
    return list(field.steps.order_by("position", "id").values_list("rule", flat=True))


def suggestion_targets(
    *, entity: EntityMapping, column: str, suggestions: list[RuleSuggestion]
) -> list[list[tuple[str, str | None]]]:
    """Per suggestion: (target column, why it does not fit or None) for each field of the
    entity the source column feeds (read-only, two queries). The fields are filtered in
    Python: SQLite, the default app database, has no JSON ``contains`` lookup."""
    chains: dict[str, list[str]] = {}
    for target, sources in entity.fields.order_by("id").values_list(
        "target_column", "source_columns"
    ):
        if column in (sources or []):
            chains[target] = []
    for target, rule in (
        RuleStep.objects.filter(field__entity=entity, field__target_column__in=list(chains))
        .order_by("position", "id")
        .values_list("field__target_column", "rule")
    ):
        chains[target].append(rule)
    return [
        [(t, suggestion_refusal(rules=rules, suggestion=x)) for t, rules in chains.items()]
        for x in suggestions
    ]


def _refuse_misfit(field: FieldMapping, suggestion: RuleSuggestion) -> None:
    reason = suggestion_refusal(rules=field_rules(field), suggestion=suggestion)
    if reason:
        raise ApplicationError(
            f"“{suggestion.label}” does not fit “{field.target_column}”: {reason}.",
            field="suggestion",
        )


def _steps(suggestion: RuleSuggestion, lookup: str) -> list[tuple[str, dict]]:
    if suggestion.needs_lookup and not lookup:
        raise ApplicationError(
            "Pick the lookup table the value map translates through.", field="lookup"
        )
    return [
        (rule, {**params, "lookup": lookup} if suggestion.needs_lookup else dict(params))
        for rule, params in suggestion.steps
    ]


def _run(values: pd.Series, steps: list[tuple[str, dict]], ctx: RuleContext):
    current, errors = values, [None] * len(values)
    for rule, params in steps:
        result = run_step(rule, current, params, ctx)
        if result.errors is not None:
            for i, message in enumerate(result.errors.tolist()):
                if message and not errors[i]:
                    errors[i] = f"{rule}: {message}"
        current = result.values
    return to_python(current).tolist(), errors


def suggestion_preview(
    *, field: FieldMapping, profile: ColumnProfile, suggestion: RuleSuggestion, lookup: str = ""
) -> SuggestionPreview:
    """The field's chain before and after appending the suggestion, run on the column's
    distinct values (``profile.examples``, else its most frequent ones), each outcome a value
    or the failure the chain reports; shows changed outcomes first, then failing values;
    read-only; ApplicationError for a missing lookup, bad parameters or a suggestion that does
    not fit the chain (``suggestion_refusal``)."""
    _refuse_misfit(field, suggestion)
    current = [(s.rule, dict(s.params)) for s in field.steps.order_by("position", "id")]
    added = _steps(suggestion, lookup)
    at = insert_at([rule for rule, _ in current])
    examples = profile.examples or [v for v, _ in profile.top_values]
    values = pd.Series(list(examples), dtype=object)
    ctx = RuleContext(lookups=plan_snapshot_build(plan=field.entity.plan).lookups)
    try:
        before, failed = _run(values, current, ctx)
        after, errors = _run(values, current[:at] + added + current[at:], ctx)
    except RuleParamError as exc:
        raise ApplicationError(f"{exc.param}: {exc.message}", field=exc.param) from exc
    rows = list(zip(values.tolist(), before, failed, after, errors, strict=True))

    def differs(row: tuple) -> bool:
        now = ("failed", row[2]) if row[2] else ("value", row[1])
        then = ("failed", row[4]) if row[4] else ("value", row[3])
        return now != then

    changed = [r for r in rows if differs(r)]
    same = [r for r in rows if not differs(r)]
    shown = (changed + [r for r in same if r[2]] + [r for r in same if not r[2]])[:PREVIEW_VALUES]
    return SuggestionPreview(field, suggestion, current, added, shown, len(changed), len(rows), at)


@transaction.atomic
def field_suggestion_apply(
    *, field: FieldMapping, user, suggestion: RuleSuggestion, lookup: str = ""
) -> list[RuleStep]:
    """Add the suggestion's steps to the field's chain — before its mapping step if it has
    one (``insert_at``), else at the end — all or none (each through ``step_add``: capability
    checked, parameters validated, audited, in the history); ApplicationError for a
    suggestion that does not fit the chain (``suggestion_refusal``)."""
    _refuse_misfit(field, suggestion)
    at = insert_at(field_rules(field))
    return [
        step_add(field=field, user=user, rule=rule, params=params, position=at + i)
        for i, (rule, params) in enumerate(_steps(suggestion, lookup))
    ]
