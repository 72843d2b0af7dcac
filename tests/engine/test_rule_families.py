"""The rule registry is assembled from the families: each rule is registered where it is defined,
once, and the registry lists them in MENU_ORDER (what the forms, the API and the document show)."""

from __future__ import annotations

from runs.engine.rules import MENU_ORDER, REGISTRY, dates, identity, lookups, numbers, text

FAMILIES = (text, lookups, dates, numbers, identity)


def test_each_rule_is_registered_by_the_family_module_that_defines_its_function():
    misplaced = [
        (family.__name__, rule.name, rule.fn.__module__)
        for family in FAMILIES
        for rule in family.RULES
        if rule.fn.__module__ != family.__name__
    ]

    assert misplaced == []


def test_registry_is_the_families_rules_once_each_in_menu_order():
    registered = [rule.name for family in FAMILIES for rule in family.RULES]

    assert sorted(registered) == sorted(set(registered))
    assert list(REGISTRY) == list(MENU_ORDER)
    assert set(REGISTRY) == set(registered)
    assert {name: REGISTRY[name].fn for name in REGISTRY} == {
        rule.name: rule.fn for family in FAMILIES for rule in family.RULES
    }
