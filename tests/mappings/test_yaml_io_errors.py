"""Plan YAML import: a bad document is refused with its line, column and reason, and
creates nothing."""
# ruff: noqa: F811 -- pytest fixtures imported from yaml_fixtures are used as arguments

from __future__ import annotations

import pytest

from mappings.yaml_io import plan_import_yaml
from migration_planner.lib.errors import ApplicationError
from tests.mappings.yaml_fixtures import created_nothing, demo, demo_text, systems, text_position  # noqa: F401

pytestmark = pytest.mark.django_db


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
        "unknown parameter “lenght” for rule 'truncate' (allowed: length, on_overflow)",
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
    line, column = text_position(text, needle, occurrence)

    with pytest.raises(ApplicationError) as err:
        plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)

    where = f"line {line}, column {column + shift}: "
    message = err.value.message
    assert message.startswith(where), message
    assert path is None or f"{where}{path}: " in message, message
    assert reason in message
    assert created_nothing()


def test_plan_import_yaml_wrong_format_and_empty_document_are_refused(demo_text, analyst):
    for text, expected in (
        (
            demo_text.replace("format: migration-planner/v2", "format: other/v9"),
            "line 1, column 9: format: unsupported format 'other/v9'",
        ),
        ("", "line 1, column 1: the document is empty"),
        ("- just\n- a list\n", "line 1, column 1: (document): must be a mapping, got a list"),
    ):
        with pytest.raises(ApplicationError) as err:
            plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)
        assert err.value.message.startswith(expected), err.value.message
    assert created_nothing()


def test_plan_import_yaml_refuses_aliases(demo_text, analyst):
    text = demo_text.replace("lookups:\n", "lookups: &x\n", 1).replace(
        "uat_cases:\n", "uat_cases_ref: *x\nuat_cases:\n", 1
    )

    with pytest.raises(ApplicationError) as err:
        plan_import_yaml(text=text, user=analyst, allow_unknown_schema=True)

    assert "aliases (*name) are not supported" in err.value.message
    assert created_nothing()
