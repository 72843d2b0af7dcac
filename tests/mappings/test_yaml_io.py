"""Plan YAML export / import: round trips, secrets, and errors that name line and column."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from pathlib import Path

import pytest
import yaml
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.demo_plan import PLAN_SLUG, demo_plan_install
from mappings.models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    RuleStep,
)
from mappings.services import plan_version_create
from mappings.yaml_io import plan_export_yaml, plan_import_yaml
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.engine.rules import REGISTRY
from tests.factories import SystemFactory
from validation.models import AuditEvent, UATTestCase, ValidationRule

pytestmark = pytest.mark.django_db

US_STATES = {"CA": "California", "NY": "New York", "TX": "Texas", "WA": "Washington"}


@pytest.fixture
def systems(db):
    return SystemFactory(name="Legacy CRM"), SystemFactory(name="New CRM")


@pytest.fixture
def demo(systems, analyst):
    plan, _ = demo_plan_install(source=systems[0], target=systems[1], owner=analyst,
                                us_states=US_STATES, today=dt.date(2026, 3, 2))
    return plan


@pytest.fixture
def demo_text(demo):
    """The demo plan's YAML, with the plan itself deleted so importing it starts from nothing."""
    text = plan_export_yaml(plan=demo)
    demo.delete()
    return text


def _created_nothing() -> bool:
    models = (Plan, EntityMapping, FieldMapping, RuleStep, LookupTable, LookupEntry, Milestone,
              ValidationRule, UATTestCase)
    return all(m.objects.count() == 0 for m in models) and not AuditEvent.objects.filter(
        action="import").exists()


def _position(text: str, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """1-based line and column of the ``occurrence``-th ``needle`` in ``text``."""
    index = [m.start() for m in re.finditer(re.escape(needle), text)][occurrence]
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


# --------------------------------------------------------------------------- export


def test_plan_export_yaml_demo_plan_round_trips_byte_identical(demo, analyst):
    first = plan_export_yaml(plan=demo)

    plan = plan_import_yaml(text=first, user=analyst, replace=True, allow_unknown_schema=True)

    assert plan.pk == demo.pk
    assert plan_export_yaml(plan=plan) == first


def test_plan_export_yaml_demo_plan_reimports_after_delete(demo_text, analyst):
    plan = plan_import_yaml(text=demo_text, user=analyst, allow_unknown_schema=True)

    assert plan_export_yaml(plan=plan) == demo_text
    assert plan.owner == analyst
    assert plan.entities.count() == 3


def test_plan_export_yaml_layout_follows_the_documented_format(demo):
    data = yaml.safe_load(plan_export_yaml(plan=demo))

    name = data["entities"][0]["fields"][1]
    assert list(data) == ["format", "plan", "systems", "lookups", "entities",
                          "validation_rules", "uat_cases", "milestones"]
    assert data["format"] == "migration-planner/v2"
    assert data["systems"] == {"source": "Legacy CRM", "target": "New CRM"}
    assert name == {"target": "name", "sources": ["Cust_Name"],
                    "steps": [{"rule": "trim", "collapse_inner": True}, {"rule": "title"},
                              {"rule": "truncate", "length": 80, "on_overflow": "fail"}],
                    "required": True,
                    "notes": "Target allows 80 characters; longer names go to the error queue."}
    assert data["lookups"][1]["entries"]["CA"] == "California"
    assert data["milestones"][0]["start"] == dt.date(2026, 3, 2)


def test_plan_export_yaml_never_contains_secrets_or_connection_details(demo):
    source, target = demo.source, demo.target
    for system, secret in ((source, "s3cr3t-source-pw"), (target, "t0p-target-pw")):
        system.kind, system.host, system.database = "postgresql", f"{system.pk}.db.internal", "crm"
        system.username, system.path = "etl_user_xyz", ""
        system.set_secret(secret)
        system.save()

    text = plan_export_yaml(plan=demo)

    for system, secret in ((source, "s3cr3t-source-pw"), (target, "t0p-target-pw")):
        system.refresh_from_db()
        assert system.secret_ciphertext
        assert secret not in text
        assert system.secret_ciphertext not in text
        assert system.host not in text
        assert "etl_user_xyz" not in text


def test_plan_import_yaml_normalises_rule_params_like_the_workbench(demo_text, analyst):
    plan = plan_import_yaml(text=demo_text, user=analyst, allow_unknown_schema=True)

    step = RuleStep.objects.get(field__entity__plan=plan, field__target_column="name",
                                rule="truncate")
    assert step.params == {"length": 80, "on_overflow": "fail"}
    trim = RuleStep.objects.filter(field__entity__plan=plan, rule="trim").first()
    assert trim.params == {"empty_to_null": True, "collapse_inner": True}


def test_plan_import_yaml_records_an_audit_event(demo_text, analyst):
    plan = plan_import_yaml(text=demo_text, user=analyst, allow_unknown_schema=True)

    event = AuditEvent.objects.get(action="import")
    assert event.actor == analyst
    assert event.object_id == str(plan.uuid)
    assert event.after["entities"] == 3
    assert event.after["replaced"] is False


def test_plan_import_yaml_replace_keeps_versions_and_resets_status(demo, analyst):
    version = plan_version_create(plan=demo, user=analyst)
    Plan.objects.filter(pk=demo.pk).update(status="signed_off")
    rule_pk = ValidationRule.objects.get(plan=demo, name="Customer_ID unique").pk
    text = plan_export_yaml(plan=demo).replace("title: Search for a customer",
                                                "title: Find a customer")

    plan = plan_import_yaml(text=text, user=analyst, replace=True, allow_unknown_schema=True)

    assert list(plan.versions.all()) == [version]
    assert plan.status == "draft"
    assert ValidationRule.objects.get(plan=plan, name="Customer_ID unique").pk == rule_pk
    assert plan.uat_cases.first().title.startswith("Find a customer")


def test_plan_import_yaml_existing_slug_without_replace_is_refused(demo, analyst):
    text = plan_export_yaml(plan=demo)
    line, column = _position(text, PLAN_SLUG)

    with pytest.raises(ApplicationError) as err:
        plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)

    assert err.value.message.startswith(f"line {line}, column {column}: plan.slug: a plan with "
                                        f"slug '{PLAN_SLUG}' already exists")
    assert demo.entities.count() == 3


def test_plan_import_yaml_refuses_a_user_without_edit_rights(demo_text, viewer):
    with pytest.raises(PermissionDeniedError):
        plan_import_yaml(text=demo_text, user=viewer, allow_unknown_schema=True)

    assert _created_nothing()


# --------------------------------------------------------------------------- errors


def _replace(old: str, new: str, count: int = 1):
    return lambda text: text.replace(old, new, count)


def _drop_line(fragment: str):
    def drop(text: str) -> str:
        lines = text.splitlines(keepends=True)
        del lines[next(i for i, line in enumerate(lines) if fragment in line)]
        return "".join(lines)

    return drop


BAD_CASES = {
    "syntax error": (
        _replace("  batch_size: 2000\n", "  batch_size: [2000\n"),
        ("parallelism: 2", 0, len("parallelism")),
        None,
        "YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow sequence "
        "at line ",
    ),
    "unknown rule": (
        _replace("- rule: phone_format", "- rule: phone_fmt"),
        ("rule: phone_fmt", 0, 0),
        "entities[0].fields[6].steps[0]",
        "unknown rule type 'phone_fmt'",
    ),
    "bad param": (
        _replace("length: 80\n", "length: eighty\n"),
        ("eighty", 0, 0),
        "entities[0].fields[1].steps[2].length",
        "must be an integer, got 'eighty'",
    ),
    "unknown parameter": (
        _replace("length: 80\n", "lenght: 80\n"),
        ("lenght", 0, 0),
        "entities[0].fields[1].steps[2].lenght",
        "unknown parameter for rule 'truncate'",
    ),
    "unknown system": (
        _replace("source: Legacy CRM", "source: Legacy ERP"),
        ("Legacy ERP", 0, 0),
        "systems.source",
        "unknown system 'Legacy ERP'",
    ),
    "missing required key": (
        _drop_line("target_table: accounts"),
        ("name: accounts", 0, 0),
        "entities[0]",
        "missing required key 'target_table'",
    ),
    "wrong type": (
        _replace("batch_size: 2000", "batch_size: lots"),
        ("lots", 0, 0),
        "plan.batch_size",
        "must be an integer, got text",
    ),
    "duplicate entity name": (
        _replace("- name: contacts", "- name: accounts"),
        ("- name: accounts", 1, len("- name: ")),
        "entities[1].name",
        "duplicate entity name 'accounts' (also at entities[0].name)",
    ),
    "unknown lookup": (
        _replace("lookup: us-states", "lookup: us-provinces"),
        ("us-provinces", 0, 0),
        "entities[0].fields[4].steps[2].lookup",
        "no lookup table 'us-provinces' in this plan",
    ),
    "duplicate key": (
        _replace("  batch_size: 2000\n", "  batch_size: 2000\n  batch_size: 3000\n"),
        ("batch_size: 3000", 0, 0),
        None,
        "duplicate key 'batch_size'",
    ),
    "NUL in a rule parameter": (
        _replace("separator: ', '", 'separator: "\\0"'),
        ('"\\0"', 0, 0),
        "entities[0].fields[2].steps[0].separator",
        "must not contain NUL characters",
    ),
    "bad milestone dates": (
        _replace("end: 2026-03-15", "end: 2026-02-15"),
        ("2026-02-15", 0, 0),
        "milestones[0].end",
        "must not be before start",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_plan_import_yaml_bad_document_names_line_column_and_reason(case, demo_text, analyst):
    mutate, (needle, occurrence, shift), path, reason = BAD_CASES[case]
    text = mutate(demo_text)
    assert text != demo_text
    line, column = _position(text, needle, occurrence)

    with pytest.raises(ApplicationError) as err:
        plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)

    where = f"line {line}, column {column + shift}: "
    message = err.value.message
    assert message.startswith(where), message
    assert (path is None or f"{where}{path}: " in message), message
    assert reason in message
    assert _created_nothing()


def test_plan_import_yaml_wrong_format_and_empty_document_are_refused(demo_text, analyst):
    for text, expected in (
        (demo_text.replace("format: migration-planner/v2", "format: other/v9"),
         "line 1, column 9: format: unsupported format 'other/v9'"),
        ("", "line 1, column 1: the document is empty"),
        ("- just\n- a list\n", "line 1, column 1: (document): must be a mapping, got a list"),
    ):
        with pytest.raises(ApplicationError) as err:
            plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)
        assert err.value.message.startswith(expected), err.value.message
    assert _created_nothing()


def test_plan_import_yaml_refuses_aliases(demo_text, analyst):
    text = demo_text.replace("lookups:\n", "lookups: &x\n", 1).replace(
        "uat_cases:\n", "uat_cases_ref: *x\nuat_cases:\n", 1)

    with pytest.raises(ApplicationError) as err:
        plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)

    assert "aliases (*name) are not supported" in err.value.message
    assert _created_nothing()


# --------------------------------------------------------------------------- property


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",),
                              exclude_characters="\x00"), max_size=20)
_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_COLUMN = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
                  min_size=1, max_size=16).filter(str.strip)
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
    usable = [r for r in REGISTRY.values()
              if all(p.type not in ("lookup", "entity") or names[p.type] for p in r.params)]
    chain = draw(st.lists(st.sampled_from(usable), max_size=4))
    if len(sources) > 1:
        chain = [draw(st.sampled_from([REGISTRY["concat"], REGISTRY["coalesce"]])), *chain]
    steps = []
    for rule in chain:
        params = {p.name: _param_value(draw, p, names) for p in rule.params
                  if p.required or draw(st.booleans())}
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
            fields.append({"target": target, "sources": sources,
                           "steps": draw(_steps(names, sources)),
                           "default": draw(st.none() | _TEXT), "required": draw(st.booleans()),
                           "notes": draw(_TEXT)})
        entities.append({"name": name, "load_order": draw(st.integers(0, 5)),
                         "notes": draw(_TEXT), "fields": fields,
                         "source_key": draw(st.lists(_COLUMN, min_size=1, max_size=2))})
    return {"name": draw(_TEXT.filter(str.strip)), "description": draw(_TEXT),
            "lookups": lookups, "entities": entities,
            "threshold": draw(st.decimals(0, 100, places=2)),
            "milestones": draw(st.lists(st.tuples(_TEXT.filter(str.strip),
                                                  st.dates(dt.date(2020, 1, 1),
                                                           dt.date(2030, 1, 1)),
                                                  st.integers(0, 60)), max_size=3))}


def _install(spec: dict, systems) -> Plan:
    plan = Plan.objects.create(name=spec["name"], slug=f"prop-{next(_SEQ)}", source=systems[0],
                               target=systems[1], description=spec["description"],
                               failure_threshold_pct=spec["threshold"])
    for name, entries in spec["lookups"].items():
        table = LookupTable.objects.create(plan=plan, name=name, description=name * 2)
        for key, value in entries.items():
            LookupEntry.objects.create(table=table, key=key, value=value)
    for e in spec["entities"]:
        entity = EntityMapping.objects.create(
            plan=plan, name=e["name"], source_table="src", target_table="tgt",
            source_key=e["source_key"], load_order=e["load_order"], notes=e["notes"])
        for position, f in enumerate(e["fields"]):
            field = FieldMapping.objects.create(
                entity=entity, target_column=f["target"], source_columns=f["sources"],
                default_value=f["default"], required=f["required"], notes=f["notes"],
                position=position)
            for i, (rule, params) in enumerate(f["steps"]):
                RuleStep.objects.create(field=field, position=i, rule=rule, params=params)
    for i, (phase, start, days) in enumerate(spec["milestones"]):
        Milestone.objects.create(plan=plan, phase=phase, start=start,
                                 end=start + dt.timedelta(days=days), position=i)
    return plan


@settings(max_examples=int(os.environ.get("YAML_ROUND_TRIP_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=_plans())
def test_plan_export_yaml_random_plans_round_trip(spec, systems, analyst):
    with transaction.atomic():
        plan = _install(spec, systems)
        first = plan_export_yaml(plan=plan)

        replaced = plan_import_yaml(text=first, user=analyst, replace=True,
                                    allow_unknown_schema=True)
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


# --------------------------------------------------------------------------- delete policy


def test_plan_yaml_without_delete_policy_imports_as_ignore(demo_text, analyst):
    assert "delete_policy" not in demo_text  # files written before the field existed
    plan = plan_import_yaml(text=demo_text, user=analyst, allow_unknown_schema=True)
    assert set(plan.entities.values_list("delete_policy", flat=True)) == {"ignore"}


def test_plan_yaml_delete_policy_mark_round_trips(demo, analyst):
    demo.entities.filter(name="accounts").update(
        delete_policy="mark", delete_mark_column="account_status", delete_mark_value="Deleted")
    text = plan_export_yaml(plan=demo)
    assert "delete_policy: mark" in text and "delete_mark_column: account_status" in text
    plan = plan_import_yaml(text=text, user=analyst, replace=True, allow_unknown_schema=True)
    accounts = plan.entities.get(name="accounts")
    assert (accounts.delete_policy, accounts.delete_mark_column, accounts.delete_mark_value) == (
        "mark", "account_status", "Deleted")
    assert plan_export_yaml(plan=plan) == text


def test_plan_yaml_mark_policy_without_column_is_refused_with_its_place(demo_text, analyst):
    text = demo_text.replace("  load_mode: upsert\n",
                             "  load_mode: upsert\n  delete_policy: mark\n", 1)
    with pytest.raises(ApplicationError) as caught:
        plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)
    assert "delete_policy mark needs a delete_mark_column" in str(caught.value)
    assert _created_nothing()


def test_plan_import_yaml_v1_file_keeps_the_rule_behaviour_it_was_written_for(demo_text, analyst):
    """A v1 file's `trim` collapsed inner whitespace and its `value_map` kept null/blank null:
    imported today it gets those options explicitly, so its output does not change."""
    old = demo_text.replace("format: migration-planner/v2", "format: migration-planner/v1")
    old = re.sub(r"\n *collapse_inner: true", "", old)
    assert "collapse_inner" not in old and "on_null" not in old
    plan = plan_import_yaml(text=old, user=analyst, allow_unknown_schema=True)
    trims = RuleStep.objects.filter(field__entity__plan=plan, rule="trim")
    maps = RuleStep.objects.filter(field__entity__plan=plan, rule="value_map")
    assert trims.count() == 11 and maps.count() == 2
    assert {s.params["collapse_inner"] for s in trims} == {True}
    assert {s.params["on_null"] for s in maps} == {"null"}
