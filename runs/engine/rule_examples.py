"""One worked example per registered rule type, computed by the rule itself.

The browser's step forms and the plan document show these; the every-rule-type browser test
fills each form from ``EXAMPLES``' parameters, so a rule registered without an example (or with
one its own validation refuses) fails the suite. Pure Python, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from runs.engine.rules import REGISTRY, RuleContext, run_step, to_python
from runs.engine.snapshot import LookupSpec

EXAMPLE_LOOKUP = "status_codes"
EXAMPLE_ENTITY = "accounts"


@dataclass(frozen=True)
class Example:
    """Parameters and input values (one text per row, or a row of texts for frame rules)."""

    params: dict[str, Any]
    inputs: tuple[Any, ...]


EXAMPLES: dict[str, Example] = {
    "copy": Example({}, ("Acme Corp.",)),
    "trim": Example({"empty_to_null": True}, ("  Acme   Corp. ", "   ")),
    "upper": Example({}, ("acme corp.",)),
    "lower": Example({}, ("ACME Corp.",)),
    "title": Example({}, ("acme corp.",)),
    "concat": Example({"separator": ", ", "strip": True}, (("12 Main St", " Suite 4"),)),
    "coalesce": Example({}, (("", "555-0100"),)),
    "split": Example({"separator": " ", "index": -1, "strip": True}, ("Jane Q. Public",)),
    "value_map": Example(
        {"lookup": EXAMPLE_LOOKUP, "on_missing": "fail", "ignore_case": True}, ("a", "Z")
    ),
    "regex_replace": Example({"pattern": "[^0-9]", "replacement": ""}, ("(555) 010-0199",)),
    "regex_validate": Example(
        {"pattern": "[0-9]{5}", "full_match": True, "message": "is not a 5-digit ZIP"},
        ("94105", "9410"),
    ),
    "phone_format": Example({}, ("555.010.0199", "+1 555 010 0199")),
    "email": Example({}, (" Jane@Example.COM ", "jane@")),
    "parse_date": Example(
        {"formats": ["%m/%d/%Y", "%Y-%m-%d"], "output": "date"}, ("03/15/2019", "15/03/2019")
    ),
    "cast": Example({"to": "decimal", "scale": 2, "thousands_separator": ","}, ("1,234.567",)),
    "truncate": Example({"length": 8, "on_overflow": "truncate"}, ("Acme Logistics",)),
    "default_if_null": Example({"value": "n/a", "blank_is_null": True}, (None, "")),
    "constant": Example({"value": "ACTIVE"}, ("anything",)),
    "uuid_from_key": Example({"scope": "accounts", "from": "value"}, ("1001",)),
    "hash": Example({"salt": "pepper"}, ("jane@example.com",)),
    "mask": Example({"keep_last": 4, "mask_char": "*"}, ("4111111111111111",)),
    "reference_lookup": Example({"entity": EXAMPLE_ENTITY}, ("1001", "9999")),
}


def _context() -> RuleContext:
    lookup = LookupSpec(EXAMPLE_LOOKUP, {"A": "Active", "I": "Inactive"}, default=None)
    return RuleContext(
        lookups={EXAMPLE_LOOKUP: lookup},
        keymaps={EXAMPLE_ENTITY: {"1001": "42"}},
        namespace="example-plan",
    )


def rule_example(name: str) -> list[tuple[str, str, str | None]]:
    """(input shown, output shown, error or None) per example row; pure; KeyError if none."""
    example = EXAMPLES[name]
    rule = REGISTRY[name]
    if rule.accepts_frame and example.inputs and isinstance(example.inputs[0], tuple):
        frame = pd.DataFrame([list(row) for row in example.inputs])
        frame.columns = [f"col{i + 1}" for i in range(frame.shape[1])]
        values: Any = frame.astype(object)
        shown = [" + ".join(_show(v) for v in row) for row in example.inputs]
    else:
        values = pd.Series(list(example.inputs), dtype=object)
        shown = [_show(v) for v in example.inputs]
    result = run_step(name, values, example.params, _context())
    outputs = to_python(result.values).tolist()
    errors = [None] * len(outputs) if result.errors is None else result.errors.tolist()
    return [(shown[i], _show(outputs[i]), errors[i]) for i in range(len(outputs))]


def _show(value: Any) -> str:
    return "null" if value is None else f"“{value}”"
