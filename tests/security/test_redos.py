"""Issue 17.6: every user regex runs on RE2 (linear time); constructs RE2 lacks are refused with
a clear message in rules, format checks, preview and dry run."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mappings.preview import entity_preview
from mappings.services_edit import step_add
from migration_planner.lib.errors import ApplicationError
from runs.engine.rules import RuleParamError, validate_params
from runs.engine.safe_regex import RegexRefused, regex_compile
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401
from validation.checks import rule_params_clean

ROOT = Path(__file__).resolve().parents[2]
EVIL = "(?=a)(a+)+$"

# Python's re backtracks exponentially on these (Fibonacci(64) paths); RE2 answers at once. Run in a
# child with a hard timeout so a regression fails the test instead of hanging the suite.
PROBE = """
import pandas as pd
import pyarrow as pa
from runs.engine.rules import REGISTRY, RuleContext, validate_params
from validation.column_scan import _fullmatch
values = pd.Series(["a" * 64 + "b", "aaa", None], dtype=object)
params = validate_params("regex_validate", {"pattern": "(a|aa)+$", "full_match": False})
out = REGISTRY["regex_validate"].fn(values, params, RuleContext())
assert out.errors is not None and out.errors.notna().tolist() == [True, False, False]
print(_fullmatch(pa.array(["a" * 64 + "b", "aa"]), "(a|aa)+").tolist())
"""


@pytest.mark.parametrize(
    "pattern,word",
    [
        (EVIL, "lookahead"),
        ("(?<!x)y", "lookbehind"),
        (r"(a)\1", "back-references"),
        ("(", "invalid"),
    ],
)
def test_unsupported_constructs_are_refused_with_a_clear_message(pattern, word):
    with pytest.raises(RegexRefused, match=word):
        regex_compile(pattern)
    with pytest.raises(RuleParamError, match=word):
        validate_params("regex_validate", {"pattern": pattern})
    with pytest.raises(RuleParamError, match=word):
        validate_params("regex_replace", {"pattern": pattern, "replacement": ""})
    with pytest.raises(ApplicationError, match=word):
        rule_params_clean(kind="format", column="c", params={"pattern": pattern})


def test_catastrophic_patterns_finish_in_linear_time():
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "[False, True]"


def test_rules_give_the_same_answers_on_re2():
    from runs.engine.rules import REGISTRY, RuleContext

    values = pd.Series(["joe@ex", "a b", None, ""], dtype=object)
    replace = REGISTRY["regex_replace"]
    params = validate_params(
        "regex_replace", {"pattern": r"(\w+)@(\w+)", "replacement": r"\2 at \1"}
    )
    result = replace.fn(values, params, RuleContext())
    assert list(result.values.astype(object).where(result.values.notna(), None)) == [
        "ex at joe",
        "a b",
        None,
        "",
    ]


@pytest.mark.django_db
def test_preview_and_step_add_refuse_a_lookaround(demo_plan, analyst):
    entity = demo_plan.entities.get(name="accounts")
    field = entity.fields.get(target_column="name")
    with pytest.raises(ApplicationError, match="lookahead"):
        step_add(field=field, user=analyst, rule="regex_validate", params={"pattern": EVIL})
    step = field.steps.first()
    step.rule, step.params = "regex_validate", {"pattern": EVIL}  # an old, stored pattern
    step.save()
    preview = entity_preview(entity=entity, limit=5)
    assert preview.rows == [] and "lookahead" in preview.error
