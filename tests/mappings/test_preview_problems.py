"""The preview summary counts unmapped required columns and type mismatches as problems."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.urls import reverse

from mappings.preview import entity_preview
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db


def test_demo_mapping_has_no_problem(demo_plan):
    preview = entity_preview(entity=demo_plan.entities.get(name="accounts"), limit=20)
    assert preview.error is None and preview.problems == []


def test_unmapped_required_column_is_a_problem(demo_plan):
    entity = demo_plan.entities.get(name="accounts")
    entity.fields.get(target_column="name").delete()
    preview = entity_preview(entity=entity, limit=20)
    assert preview.problems == [
        "Required target column “name” is not mapped: every row would fail to load."
    ]


def test_text_into_a_timestamp_column_is_a_problem_and_marks_the_cells(
    client_for, analyst, demo_plan
):
    entity = demo_plan.entities.get(name="accounts")
    field = entity.fields.get(target_column="legacy_created_date")
    field.steps.all().delete()
    field.source_columns = ["Cust_Name"]
    field.save()
    preview = entity_preview(entity=entity, limit=20)
    cells = [
        c
        for r in preview.rows
        for c in r.result
        if c.column == "legacy_created_date" and c.value is not None
    ]
    body = (
        client_for(analyst)
        .get(
            reverse("mappings:entity_preview", kwargs={"slug": demo_plan.slug, "uuid": entity.uuid})
        )
        .content.decode()
    )
    assert preview.problems == [
        f"{len(cells)} values of “legacy_created_date” are not a valid timestamp: the load would "
        "reject them.",
        "“legacy_created_date” is a timestamp column fed text from “Cust_Name” with no "
        "parse_date step: add one with the source's date formats.",
    ]
    assert all(
        c.error == "not a valid timestamp for “legacy_created_date”" and c.rule == "type"
        for c in cells
    )
    assert "2 problems<" in body and "are not a valid timestamp" in body
    assert "<b>type</b>: not a valid timestamp for “legacy_created_date”" in body


def test_text_dates_without_a_parse_rule_are_a_problem_even_when_they_parse(demo_plan):
    entity = demo_plan.entities.get(name="accounts")
    field = entity.fields.get(target_column="legacy_created_date")
    field.steps.all().delete()
    preview = entity_preview(entity=entity, limit=20)
    assert (
        "“legacy_created_date” is a timestamp column fed text from “Creation_Date” with no "
        "parse_date step: add one with the source's date formats." in preview.problems
    )


def test_a_row_with_a_value_the_target_type_refuses_is_failing(client_for, analyst, demo_plan):
    entity = demo_plan.entities.get(name="orders")
    entity.fields.get(target_column="total_amount").steps.filter(rule="cast").delete()
    preview = entity_preview(entity=entity, limit=50)
    typed = [r for r in preview.rows if any(c.rule == "type" for c in r.result)]
    assert typed, [c.value for r in preview.rows for c in r.result if c.column == "total_amount"]
    assert all(r.status == "failed" for r in typed)
    assert preview.failed == sum(1 for r in preview.rows if r.status == "failed") >= len(typed)
    url = reverse("mappings:entity_preview", kwargs={"slug": demo_plan.slug, "uuid": entity.uuid})
    body = client_for(analyst).get(url, {"n": 50}).content.decode()
    assert f"· {preview.failed} failing ·" in body
    for row in body.split('<tr class="row-')[1:]:
        if "<b>type</b>:" in row:
            assert row.startswith("failed") and "✓" not in row, row[:300]


def test_an_unmapped_required_column_fails_every_row_and_the_count_says_so(
    client_for, analyst, demo_plan
):
    entity = demo_plan.entities.get(name="accounts")
    entity.fields.get(target_column="name").delete()
    preview = entity_preview(entity=entity, limit=20)
    assert preview.rows and all(r.status in ("failed", "skipped") for r in preview.rows)
    assert preview.failed == sum(1 for r in preview.rows if r.status != "skipped")
    assert preview.unloadable == ["name"]
    url = reverse("mappings:entity_preview", kwargs={"slug": demo_plan.slug, "uuid": entity.uuid})
    body = client_for(analyst).get(url).content.decode()
    assert f"{preview.failed} failing (every row: required “name” not mapped)" in body, body[:2000]
    assert '<span class="mark">✓</span>' not in body


@pytest.mark.parametrize(
    ("base", "cast", "kind"),
    [
        ("date", "date", "date"),
        ("timestamp", "timestamp(6) without time zone", "timestamp"),
        ("timestamptz", "timestamp(3) with time zone", "timestamp"),
        ("", "datetime(6)", "timestamp"),  # MySQL reports the typmod in its type
        ("time", "time without time zone", "time"),
        ("timetz", "time(0) with time zone", "time"),
    ],
)
def test_text_into_any_date_or_time_column_is_warned_in_grid_and_preview(base, cast, kind):
    """Pure: the editor grid's warning and the preview's problem for a text source feeding a
    date, timestamp(tz) or time column through a chain with no parse step."""
    from mappings.preview import _unparsed_dates
    from mappings.selectors import conversion_warning
    from runs.engine.connectors import ColumnInfo, TableInfo
    from runs.engine.snapshot import EntitySpec, FieldSpec

    target = TableInfo("t", (ColumnInfo("at", cast, cast_type=cast, base_type=base),))
    source = TableInfo("s", (ColumnInfo("txt", "text", cast_type="text", base_type="text"),))
    spec = EntitySpec("e", "s", "t", ("txt",), "id", fields=(FieldSpec("at", ("txt",)),))
    problems = _unparsed_dates(spec, target, source)
    assert problems and problems[0].startswith(f"“at” is a {kind} column fed text from “txt”")
    warning = conversion_warning(target.columns[0], [source.columns[0]], rules=set())
    assert warning is not None and warning.startswith(f"Target is {kind} ({cast}); source is text")
    parsed = conversion_warning(target.columns[0], [source.columns[0]], rules={"parse_date"})
    assert (parsed is None) == (kind != "time")  # no rule parses a time: still warned


def test_null_into_a_not_null_column_fails_the_row_as_the_load_would(demo_plan):
    """REVIEW9 J1-1: the field's Required flag off, a NULL result for a NOT NULL target column
    was a passing row in the preview and a required_missing record in the dry run."""
    entity = demo_plan.entities.get(name="accounts")
    field = entity.fields.get(target_column="name")
    field.steps.exclude(rule="truncate").delete()
    field.source_columns, field.required = ["Legacy_Notes"], False
    field.save()
    preview = entity_preview(entity=entity, limit=20)
    nulls = [
        (r, c) for r in preview.rows for c in r.result if c.column == "name" and c.value is None
    ]
    assert nulls, "the sample has rows without notes"
    assert all(
        c.error == "name is NOT NULL in the target" and r.status == "failed" for r, c in nulls
    )
    n = len(nulls)
    assert (
        f"{n} value{'s' if n > 1 else ''} of “name” {'are' if n > 1 else 'is'} NULL but the "
        "target column is NOT NULL: the load would reject" in " ".join(preview.problems)
    )
