"""Fixtures for the plan YAML tests (test_yaml_io*.py): two systems, the demo plan on them and
its YAML; helpers that say nothing was created and where a text sits in a document.
Import the fixtures you need: ``from tests.mappings.yaml_fixtures import demo_text``."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from mappings.demo_plan import demo_plan_install
from mappings.models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    RuleStep,
)
from mappings.yaml_io import plan_export_yaml
from tests.factories import SystemFactory
from validation.models import AuditEvent, UATTestCase, ValidationRule

US_STATES = {"CA": "California", "NY": "New York", "TX": "Texas", "WA": "Washington"}


@pytest.fixture
def systems(db):
    return SystemFactory(name="Legacy CRM"), SystemFactory(name="New CRM")


@pytest.fixture
def demo(systems, analyst):
    plan, _ = demo_plan_install(
        source=systems[0],
        target=systems[1],
        owner=analyst,
        us_states=US_STATES,
        today=dt.date(2026, 3, 2),
    )
    return plan


@pytest.fixture
def demo_text(demo):
    """The demo plan's YAML, with the plan itself deleted so importing it starts from nothing."""
    text = plan_export_yaml(plan=demo)
    demo.delete()
    return text


def created_nothing() -> bool:
    models = (
        Plan,
        EntityMapping,
        FieldMapping,
        RuleStep,
        LookupTable,
        LookupEntry,
        Milestone,
        ValidationRule,
        UATTestCase,
    )
    return (
        all(m.objects.count() == 0 for m in models)
        and not AuditEvent.objects.filter(action="import").exists()
    )


def text_position(text: str, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """1-based line and column of the ``occurrence``-th ``needle`` in ``text``."""
    index = [m.start() for m in re.finditer(re.escape(needle), text)][occurrence]
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1
