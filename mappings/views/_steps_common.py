"""What the add-step and edit-step forms need: plan choices, dependencies, the rule's example."""

from __future__ import annotations

from django.urls import reverse

from runs.engine.rule_examples import rule_example
from runs.engine.rules import REGISTRY, RuleParamError

from ..forms import step_form
from ..models import EntityMapping
from ..schema import system_table

NEW = "new"  # form prefix of the add-step form


def step_choices(entity: EntityMapping, columns: list[str] | None = None) -> dict:
    """Lookup tables, other entities and source columns a step parameter may name."""
    plan = entity.plan
    if columns is None:
        columns = list(system_table(plan.source, entity.source_table).column_names)
    return {
        "lookups": list(plan.lookups.order_by("name").values_list("name", flat=True)),
        "entities": list(
            plan.entities.exclude(pk=entity.pk)
            .order_by("load_order", "name")
            .values_list("name", flat=True)
        ),
        "columns": list(columns),
    }


def _missing(entity: EntityMapping, rule: str, choices: dict) -> list[dict]:
    """Plan objects the rule needs that do not exist yet, with where to create them."""
    plan = entity.plan
    out = []
    for param in REGISTRY[rule].params:
        if param.type == "lookup" and not choices["lookups"]:
            out.append(
                {
                    "text": "This plan has no lookup table yet: a value map needs one.",
                    "url": reverse("mappings:lookup_list", args=[plan.slug]),
                    "link": "Create a lookup table",
                }
            )
        if param.type == "entity" and not choices["entities"]:
            out.append(
                {
                    "text": "This plan has no other entity yet: a reference lookup "
                    "translates keys of a parent entity loaded earlier.",
                    "url": reverse("mappings:entity_new", args=[plan.slug]),
                    "link": "Add the parent entity",
                }
            )
    return out


def _example(rule: str) -> list[tuple[str, str, str | None]]:
    try:
        return rule_example(rule)
    except (KeyError, RuleParamError):
        return []


def new_step_context(entity: EntityMapping, rule: str, *, form=None) -> dict:
    """Template context of the add-step parameters for ``rule`` ('' = none chosen yet)."""
    if rule not in REGISTRY:
        return {"new_rule": None, "new_form": None, "new_missing": [], "new_example": []}
    choices = step_choices(entity)
    if form is None:
        form = step_form(rule, prefix=NEW, **choices)
    return {
        "new_rule": REGISTRY[rule],
        "new_form": form,
        "new_missing": _missing(entity, rule, choices),
        "new_example": _example(rule),
    }
