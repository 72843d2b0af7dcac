"""Auto-suggest of source → target column pairs."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest

from mappings.suggest import entity_suggestions, name_score, name_tokens
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401


def test_name_tokens_apply_synonyms():
    assert name_tokens("Cust_Name") == ("customer", "name")
    assert name_tokens("Zip_Code") == ("postal", "code")


def test_name_score_prefers_the_meaningful_word():
    phone = name_score(name_tokens("Phone_Number"), name_tokens("phone"))
    number = name_score(name_tokens("Phone_Number"), name_tokens("number"))
    assert phone > number


@pytest.mark.django_db
def test_suggest_pairs_demo_columns(demo_plan):
    entity = demo_plan.entities.get(name="accounts")
    entity.fields.all().delete()
    pairs = {(s.source, s.target) for s in entity_suggestions(entity=entity)}
    assert {
        ("Cust_Name", "name"),
        ("Zip_Code", "billing_postal_code"),
        ("Phone_Number", "phone"),
        ("City", "billing_city"),
    } <= pairs


@pytest.mark.django_db
def test_suggest_skips_mapped_and_rejected(demo_plan):
    entity = demo_plan.entities.get(name="accounts")
    entity.fields.exclude(target_column="name").delete()
    pairs = {
        (s.source, s.target)
        for s in entity_suggestions(entity=entity, rejected={("City", "billing_city")})
    }
    assert not any(t == "name" or s == "Cust_Name" for s, t in pairs)
    assert ("City", "billing_city") not in pairs
