"""Every model constraint explains itself in words; no user sees a constraint's name."""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.db.models import BaseConstraint

from mappings.forms import MilestoneForm, PlanForm
from tests.factories import SystemFactory

OUR_APPS = ("mappings", "runs", "validation")


def _constraints():
    for app in OUR_APPS:
        for model in apps.get_app_config(app).get_models():
            for constraint in model._meta.constraints:
                yield model, constraint


def test_every_constraint_has_a_message_in_words():
    default = BaseConstraint.default_violation_error_message
    found = list(_constraints())
    assert len(found) >= 25
    for model, constraint in found:
        message = constraint.violation_error_message
        assert message and message != default, f"{model.__name__}.{constraint.name}"
        assert constraint.name not in message


@pytest.mark.django_db
def test_plan_form_says_parallelism_range_in_words():
    source, target = SystemFactory(role="source"), SystemFactory(role="target")
    form = PlanForm(
        data={
            "name": "P",
            "source": source.pk,
            "target": target.pk,
            "strategy": "big_bang",
            "batch_size": 100,
            "parallelism": 100,
            "failure_threshold_pct": 5,
        }
    )
    assert not form.is_valid()
    text = " ".join(str(e) for errors in form.errors.values() for e in errors)
    assert "Parallelism must be between 1 and 64" in text
    assert "plan_parallelism_range" not in text and "Constraint" not in text


@pytest.mark.django_db
def test_milestone_form_says_end_before_start_in_words():
    form = MilestoneForm(
        data={
            "phase": "Build",
            "start": dt.date(2026, 3, 2),
            "end": dt.date(2026, 3, 1),
            "deliverable": "x",
        }
    )
    assert not form.is_valid()
    text = " ".join(str(e) for errors in form.errors.values() for e in errors)
    assert "cannot end before it starts" in text and "milestone_end_after_start" not in text
