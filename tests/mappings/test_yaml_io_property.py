"""Plan YAML: random plans (hypothesis) round trip through export and import; the
documented example imports."""
# ruff: noqa: F811 -- pytest fixtures imported from yaml_fixtures are used as arguments

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    RuleStep,
)
from mappings.yaml_io import plan_export_yaml, plan_import_yaml
from runs.engine.rules import REGISTRY
from tests.factories import SystemFactory
from tests.mappings.yaml_fixtures import created_nothing, demo, demo_text, systems, text_position  # noqa: F401

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- property


_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20
)
_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_COLUMN = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=16,
).filter(str.strip)
_REGEXES = st.sampled_from(["[0-9]+", "^a.*z$", "(x|y){2,3}", "[$ ]", "é+"])
_SEQ = itertools.count()


def _param_value(draw, param, names):
    if param.type == "int":
        lo = param.min_value if param.min_value is not None else -50
        hi = param.max_value if param.max_value is not None else 10_000
        return draw(st.integers(lo, hi))
    if param.type == "bool":
        return draw(st.booleans())
    if param.type == "choice":
        return draw(st.sampled_from(param.choices))
    if param.type == "list":
        return draw(st.lists(_TEXT, min_size=1, max_size=3))
    if param.type == "regex":
        return draw(_REGEXES)
    if param.type in ("lookup", "entity"):
        return draw(st.sampled_from(sorted(names[param.type])))
    return draw(_TEXT)


@st.composite
def _steps(draw, names, sources):
    usable = [
        r
        for r in REGISTRY.values()
        if all(p.type not in ("lookup", "entity") or names[p.type] for p in r.params)
    ]
    chain = draw(st.lists(st.sampled_from(usable), max_size=4))
    if len(sources) > 1:
        chain = [draw(st.sampled_from([REGISTRY["concat"], REGISTRY["coalesce"]])), *chain]
    steps = []
    for rule in chain:
        params = {
            p.name: _param_value(draw, p, names)
            for p in rule.params
            if p.required or draw(st.booleans())
        }
        steps.append((rule.name, params))
    return steps


@st.composite
def _plans(draw):
    lookups = draw(st.dictionaries(_NAME, st.dictionaries(_TEXT, _TEXT, max_size=5), max_size=3))
    entity_names = draw(st.lists(_NAME, unique=True, max_size=3))
    names = {"lookup": set(lookups), "entity": set(entity_names)}
    entities = []
    for name in entity_names:
        targets = draw(st.lists(_COLUMN, unique=True, max_size=4))
        fields = []
        for target in targets:
            sources = draw(st.lists(_COLUMN, max_size=3))
            fields.append(
                {
                    "target": target,
                    "sources": sources,
                    "steps": draw(_steps(names, sources)),
                    "default": draw(st.none() | _TEXT),
                    "required": draw(st.booleans()),
                    "notes": draw(_TEXT),
                }
            )
        entities.append(
            {
                "name": name,
                "load_order": draw(st.integers(0, 5)),
                "notes": draw(_TEXT),
                "fields": fields,
                "source_key": draw(st.lists(_COLUMN, min_size=1, max_size=2)),
            }
        )
    return {
        "name": draw(_TEXT.filter(str.strip)),
        "description": draw(_TEXT),
        "lookups": lookups,
        "entities": entities,
        "threshold": draw(st.decimals(0, 100, places=2)),
        "milestones": draw(
            st.lists(
                st.tuples(
                    _TEXT.filter(str.strip),
                    st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)),
                    st.integers(0, 60),
                ),
                max_size=3,
            )
        ),
    }


def _install(spec: dict, systems) -> Plan:
    plan = Plan.objects.create(
        name=spec["name"],
        slug=f"prop-{next(_SEQ)}",
        source=systems[0],
        target=systems[1],
        description=spec["description"],
        failure_threshold_pct=spec["threshold"],
    )
    for name, entries in spec["lookups"].items():
        table = LookupTable.objects.create(plan=plan, name=name, description=name * 2)
        for key, value in entries.items():
            LookupEntry.objects.create(table=table, key=key, value=value)
    for e in spec["entities"]:
        entity = EntityMapping.objects.create(
            plan=plan,
            name=e["name"],
            source_table="src",
            target_table="tgt",
            source_key=e["source_key"],
            load_order=e["load_order"],
            notes=e["notes"],
        )
        for position, f in enumerate(e["fields"]):
            field = FieldMapping.objects.create(
                entity=entity,
                target_column=f["target"],
                source_columns=f["sources"],
                default_value=f["default"],
                required=f["required"],
                notes=f["notes"],
                position=position,
            )
            for i, (rule, params) in enumerate(f["steps"]):
                RuleStep.objects.create(field=field, position=i, rule=rule, params=params)
    for i, (phase, start, days) in enumerate(spec["milestones"]):
        Milestone.objects.create(
            plan=plan, phase=phase, start=start, end=start + dt.timedelta(days=days), position=i
        )
    return plan


@settings(
    max_examples=int(os.environ.get("YAML_ROUND_TRIP_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=_plans())
def test_plan_export_yaml_random_plans_round_trip(spec, systems, analyst):
    with transaction.atomic():
        plan = _install(spec, systems)
        first = plan_export_yaml(plan=plan)

        replaced = plan_import_yaml(
            text=first, user=analyst, replace=True, allow_unknown_schema=True
        )
        second = plan_export_yaml(plan=replaced)
        replaced.delete()
        fresh = plan_import_yaml(text=first, user=analyst, allow_unknown_schema=True)
        third = plan_export_yaml(plan=fresh)
        transaction.set_rollback(True)

    assert second == first
    assert third == first


def test_plan_import_yaml_documented_example_imports(analyst):
    SystemFactory(name="Legacy CRM")
    SystemFactory(name="New CRM (UAT)")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plan-yaml.md").read_text()
    example = re.search(r"```yaml\n(format: .*?)```", doc, re.S).group(1)

    plan = plan_import_yaml(text=example, user=analyst, allow_unknown_schema=True)

    street = FieldMapping.objects.get(entity__plan=plan, target_column="billing_street")
    assert [s.rule for s in street.steps.order_by("position")] == ["concat", "trim"]
    assert plan.lookups.get().entries.count() == 4
    assert plan.validation_rules.get().kind == "unique"
