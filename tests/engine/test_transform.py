"""transform_frame: filters, chains, defaults, required, failures, dedupe and accounting."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs.engine.errors import SchemaError
from runs.engine.rules import RuleParamError
from runs.engine.snapshot import EntitySpec, FieldSpec, FilterSpec, LookupSpec, RuleStepSpec
from runs.engine.transform import source_key_text, transform_frame

LOOKUPS = {"status": LookupSpec("status", {"A": "active", "I": "inactive"}, None)}


def step(rule, **params):
    return RuleStepSpec(rule=rule, params=params)


def customer_entity(**overrides):
    fields = (
        FieldSpec(
            "name", ("name",), (step("trim", collapse_inner=True), step("title")), required=True
        ),
        FieldSpec("email", ("email",), (step("email"),)),
        FieldSpec(
            "status",
            ("status",),
            (step("value_map", lookup="status", on_missing="fail"),),
            default="active",
        ),
        FieldSpec("dob", ("dob",), (step("parse_date", formats=["%Y-%m-%d"]),)),
    )
    spec = {
        "name": "customer",
        "source_table": "customers",
        "target_table": "people",
        "source_key": ("id",),
        "target_key": "person_id",
        "fields": fields,
    }
    spec.update(overrides)
    return EntitySpec(**spec)


def frame_of(rows):
    return pd.DataFrame(rows, dtype=object)


def run(entity, rows, **kwargs):
    kwargs.setdefault("lookups", LOOKUPS)
    return transform_frame(
        entity=entity,
        frame=frame_of(rows),
        keymaps=kwargs.pop("keymaps", {}),
        namespace="plan",
        **kwargs,
    )


def balanced(result, n):
    return len(result.rows) + len(result.failures) + result.filtered + result.duplicates == n


ROWS = [
    {"id": "1", "name": "  ann  LEE ", "email": "Ann@X.com", "status": "A", "dob": "1990-01-02"},
    {"id": "2", "name": "bob", "email": "bad@", "status": "Z", "dob": "2021-02-30"},
    {"id": "3", "name": None, "email": None, "status": None, "dob": None},
    {"id": "4", "name": "zoë", "email": "", "status": "I", "dob": ""},
]


def test_transform_frame_produces_good_rows_in_field_order():
    result = run(customer_entity(), ROWS)

    assert list(result.rows.columns) == ["name", "email", "status", "dob"]
    assert result.rows.to_dict("records") == [
        {"name": "Ann Lee", "email": "ann@x.com", "status": "active", "dob": "1990-01-02"},
        {"name": "Zoë", "email": None, "status": "inactive", "dob": None},
    ]
    assert result.source_keys.tolist() == ["1", "4"]
    assert list(result.source_keys.index) == list(result.rows.index)
    assert balanced(result, 4)


def test_transform_frame_row_failing_several_fields_keeps_all_errors():
    result = run(customer_entity(), ROWS)
    failure = next(f for f in result.failures if f.source_key == "2")

    assert [(e.field, e.rule, e.category) for e in failure.errors] == [
        ("email", "email", "invalid_format"),
        ("status", "value_map", "lookup_miss"),
        ("dob", "parse_date", "invalid_date"),
    ]
    assert (failure.field, failure.category, failure.rule) == ("email", "invalid_format", "email")
    assert failure.message == "invalid e-mail address 'bad@'"
    assert failure.stage == "transform"
    assert failure.errors[1].value == "Z"


def test_transform_frame_failure_keeps_source_and_transformed_rows():
    result = run(customer_entity(), ROWS)
    failure = next(f for f in result.failures if f.source_key == "2")

    assert failure.source_row == ROWS[1]
    assert failure.transformed_row == {
        "name": "Bob",
        "email": "bad@",
        "status": "Z",
        "dob": "2021-02-30",
    }


def test_transform_frame_required_missing_fails_row():
    result = run(customer_entity(), ROWS)
    failure = next(f for f in result.failures if f.source_key == "3")

    assert [(e.field, e.category) for e in failure.errors] == [("name", "required_missing")]
    assert failure.transformed_row["status"] == "active"  # the default was applied


def test_transform_frame_default_fills_null_and_empty_results():
    entity = customer_entity(fields=(FieldSpec("note", ("note",), (), default="n/a"),))

    result = run(
        entity, [{"id": "1", "note": None}, {"id": "2", "note": ""}, {"id": "3", "note": "x"}]
    )

    assert result.rows["note"].tolist() == ["n/a", "n/a", "x"]


def test_transform_frame_required_empty_string_fails():
    entity = customer_entity(fields=(FieldSpec("code", ("code",), (step("copy"),), required=True),))

    result = run(entity, [{"id": "1", "code": ""}])

    assert [f.category for f in result.failures] == ["required_missing"]


@pytest.mark.parametrize(
    ("spec", "kept_ids"),
    [
        (FilterSpec("status", "eq", "A"), ["1"]),
        (FilterSpec("status", "ne", "A"), ["2", "3", "4"]),
        (FilterSpec("status", "in", ["A", "I"]), ["1", "4"]),
        (FilterSpec("status", "not_in", ["A", "I"]), ["2", "3"]),
        (FilterSpec("status", "is_null"), ["3"]),
        (FilterSpec("email", "is_null"), ["3", "4"]),
        (FilterSpec("status", "not_null"), ["1", "2", "4"]),
        (FilterSpec("id", "gt", 2), ["3", "4"]),
        (FilterSpec("id", "le", "2"), ["1", "2"]),
        (FilterSpec("dob", "lt", "2000-01-01"), ["1"]),
        (FilterSpec("email", "regex", "@X[.]"), ["1"]),
    ],
)
def test_transform_frame_filters_are_counted(spec, kept_ids):
    entity = customer_entity(fields=(FieldSpec("id", ("id",)),), filters=(spec,))

    result = run(entity, ROWS)

    assert result.rows["id"].tolist() == kept_ids
    assert result.filtered == 4 - len(kept_ids)
    assert balanced(result, 4)


def test_transform_frame_filtered_rows_are_not_failures():
    entity = customer_entity(filters=(FilterSpec("id", "eq", "1"),))

    result = run(entity, ROWS)

    assert (len(result.rows), len(result.failures), result.filtered) == (1, 0, 3)


def test_transform_frame_dedupe_keeps_first_and_counts_later():
    entity = customer_entity(
        fields=(FieldSpec("email", ("email",), (step("email"),)),), dedupe_on=("email",)
    )
    rows = [
        {"id": "1", "email": "a@x.com"},
        {"id": "2", "email": "A@X.COM "},
        {"id": "3", "email": "b@x.com"},
        {"id": "4", "email": None},
        {"id": "5", "email": None},
        {"id": "6", "email": "a@x.com"},
    ]

    result = run(entity, rows)

    assert result.source_keys.tolist() == ["1", "3", "4", "5"]
    assert result.duplicates == 2
    assert balanced(result, 6)


def test_transform_frame_failed_rows_do_not_count_as_duplicates():
    entity = customer_entity(
        fields=(
            FieldSpec("email", ("email",), (step("email"),)),
            FieldSpec("n", ("n",), (step("cast", to="int"),)),
        ),
        dedupe_on=("email",),
    )
    rows = [{"id": "1", "email": "a@x.com", "n": "x"}, {"id": "2", "email": "a@x.com", "n": "1"}]

    result = run(entity, rows)

    assert (result.source_keys.tolist(), result.duplicates, len(result.failures)) == (["2"], 0, 1)


def test_transform_frame_concat_and_constant_and_uuid_fields():
    entity = customer_entity(
        source_key=("region", "id"),
        fields=(
            FieldSpec("address", ("street", "city"), (step("concat", separator=", "),)),
            FieldSpec("kind", (), (step("constant", value="person"),)),
            FieldSpec("uid", (), (step("uuid_from_key", scope="customer"),)),
        ),
    )
    rows = [{"region": "eu", "id": "1", "street": " 1 Main ", "city": None}]

    result = run(entity, rows)
    again = run(entity, rows)

    assert result.source_keys.tolist() == ["eu|1"]
    assert result.rows[["address", "kind"]].to_dict("records") == [
        {"address": "1 Main", "kind": "person"}
    ]
    assert result.rows["uid"].tolist() == again.rows["uid"].tolist()


def test_transform_frame_reference_lookup_uses_keymaps():
    entity = customer_entity(
        fields=(FieldSpec("owner_id", ("owner",), (step("reference_lookup", entity="person"),)),)
    )
    rows = [{"id": "1", "owner": "7"}, {"id": "2", "owner": "8"}, {"id": "3", "owner": None}]

    result = run(entity, rows, keymaps={"person": {"7": "p-7"}})

    assert result.rows["owner_id"].tolist() == ["p-7", None]
    assert [(f.source_key, f.category) for f in result.failures] == [("2", "reference_missing")]


def test_transform_frame_keeps_original_index_labels():
    entity = customer_entity(fields=(FieldSpec("id", ("id",)),))
    frame = frame_of(ROWS)
    frame.index = [100, 101, 102, 103]

    result = transform_frame(entity=entity, frame=frame, lookups={}, keymaps={}, namespace="p")

    assert list(result.rows.index) == [100, 101, 102, 103]


def test_transform_frame_output_is_arrow_text_with_an_object_view():
    result = run(customer_entity(), ROWS)

    # what the engine validates and loads: Arrow strings, no Python str per value
    text = result.text_rows
    assert all(isinstance(text[c].array, pd.arrays.ArrowStringArray) for c in text.columns)
    assert pd.isna(text.iloc[1]["email"])
    # the object view (previews, reports): str / None, same rows and index
    assert {str(dtype) for dtype in result.rows.dtypes} == {"object"}
    assert result.rows.iloc[1]["email"] is None
    assert list(result.rows.index) == list(text.index)
    assert result.rows.fillna("").to_numpy().tolist() == text.fillna("").to_numpy().tolist()


def test_transform_frame_unknown_source_column_raises_schema_error():
    entity = customer_entity(fields=(FieldSpec("x", ("nope",)),))

    with pytest.raises(SchemaError):
        run(entity, ROWS)


def test_transform_frame_several_sources_without_combining_step_raises():
    entity = customer_entity(fields=(FieldSpec("x", ("name", "email"), (step("trim"),)),))

    with pytest.raises(RuleParamError):
        run(entity, ROWS)


def test_transform_frame_unknown_filter_op_raises():
    entity = customer_entity(filters=(FilterSpec("id", "around", "1"),))

    with pytest.raises(RuleParamError):
        run(entity, ROWS)


def test_transform_frame_empty_frame():
    result = run(customer_entity(), pd.DataFrame(columns=["id", "name", "email", "status", "dob"]))

    assert (len(result.rows), result.failures, result.filtered, result.duplicates) == (0, [], 0, 0)


def test_source_key_text_single_and_composite():
    frame = frame_of([{"a": "1", "b": "x"}, {"a": "2", "b": None}])

    assert source_key_text(frame, ("a",)).tolist() == ["1", "2"]
    assert source_key_text(frame, ("a", "b")).tolist() == ["1|x", "2|"]


# --------------------------------------------------------------------------- property test

_TEXT = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["A", "I", "Z", " a ", "é", "1", "2021-02-30", "x@y.com", "555"]),
)


@st.composite
def frames(draw):
    n = draw(st.integers(min_value=0, max_value=25))
    cols = {c: draw(st.lists(_TEXT, min_size=n, max_size=n)) for c in ("a", "b", "c")}
    cols["id"] = [str(i) for i in range(n)]
    return pd.DataFrame(cols, dtype=object, columns=["id", "a", "b", "c"])


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=frames(),
    filters=st.lists(
        st.builds(
            FilterSpec,
            column=st.sampled_from(["a", "b"]),
            op=st.sampled_from(["eq", "ne", "is_null", "not_null", "in"]),
            value=st.sampled_from(["A", "", "é", ["A", "I"]]),
        ),
        max_size=2,
    ),
    required=st.booleans(),
    dedupe=st.booleans(),
)
def test_transform_frame_accounting_always_balances(frame, filters, required, dedupe):
    entity = EntitySpec(
        name="e",
        source_table="s",
        target_table="t",
        source_key=("id",),
        target_key="id",
        fields=(
            FieldSpec(
                "a",
                ("a",),
                (step("trim"), step("value_map", lookup="status", on_missing="fail")),
                required=required,
            ),
            FieldSpec("b", ("b",), (step("parse_date", formats=["%Y-%m-%d"]),)),
            FieldSpec(
                "c", ("b", "c"), (step("concat"), step("truncate", length=2, on_overflow="fail"))
            ),
        ),
        filters=tuple(filters),
        dedupe_on=("c",) if dedupe else (),
    )

    result = transform_frame(entity=entity, frame=frame, lookups=LOOKUPS, keymaps={}, namespace="p")

    assert balanced(result, len(frame))
    assert set(result.source_keys) | {f.source_key for f in result.failures} <= set(frame["id"])
    assert all(f.errors for f in result.failures)


def test_every_failing_rule_of_a_row_is_recorded_across_fields_and_chain():
    """Fixing one rule must not just reveal the next: all of a row's failures are recorded —
    every field, and later rules of a chain while the failing rules left the value as it was."""
    code = FieldSpec(
        "code",
        ("code",),
        (
            step("regex_validate", pattern="[0-9]+", full_match=True),  # fails, value unchanged
            step("truncate", length=3, on_overflow="fail"),  # still sees the real value: fails too
        ),
    )
    when = FieldSpec(
        "when",
        ("when",),
        (
            step("parse_date", formats=["%Y-%m-%d"]),  # fails and yields null ...
            step("default_if_null", value="n/a"),
            step("regex_validate", pattern="[0-9-]+"),  # ... so a verdict on "n/a" is an artefact
        ),
    )
    phone = FieldSpec("phone", ("phone",), (step("phone_format"),))
    entity = customer_entity(fields=(code, when, phone))
    rows = [
        {"id": "1", "code": "abcdef", "when": "2021-02-30", "phone": "12"},
        {"id": "2", "code": "12", "when": "2021-02-03", "phone": "(212) 555-0100"},
    ]
    result = run(entity, rows)
    assert len(result.rows) == 1
    [failure] = result.failures
    assert [(e.field, e.rule) for e in failure.errors] == [
        ("code", "regex_validate"),
        ("code", "truncate"),
        ("when", "parse_date"),
        ("phone", "phone_format"),
    ]
    assert failure.errors[1].value == "abcdef"
    assert (failure.field, failure.rule) == ("code", "regex_validate")  # the headline


def test_without_failure_records_the_good_rows_are_the_same():
    """The report's re-derivation asks for the good rows only (issue 20): same rows, same
    keys, same counts; the failed rows still fail (excluded), but no RowFailure is built."""
    entity = customer_entity(dedupe_on=("email",))
    rows = ROWS + [{**ROWS[0], "id": "5"}]
    full, lean = run(entity, rows), run(entity, rows, failure_records=False)
    assert full.failures and lean.failures == []
    pd.testing.assert_frame_equal(lean.text_rows, full.text_rows)
    pd.testing.assert_series_equal(lean.source_keys, full.source_keys)
    assert (lean.filtered, lean.duplicates) == (full.filtered, full.duplicates) == (0, 1)
