"""Live preview of an entity's current mapping on sample source rows."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest

from mappings.preview import entity_preview
from mappings.schema import system_table
from mappings.services_edit import step_add
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db


def _accounts(plan):
    return plan.entities.get(name="accounts")


def test_preview_marks_failing_cells_with_messages(demo_plan):
    preview = entity_preview(entity=_accounts(demo_plan), limit=100)
    failed = [r for r in preview.rows if r.status == "failed"]
    assert preview.error is None
    assert len(preview.rows) == 100
    assert failed
    cells = [c for r in failed for c in r.result if c.error]
    assert all(c.error for c in cells)
    assert len(cells) >= len(failed)


def test_preview_shows_source_and_result_side_by_side(demo_plan):
    preview = entity_preview(entity=_accounts(demo_plan), limit=5)
    first = preview.rows[0]
    assert preview.source_columns[0] == "Customer_ID"
    assert "name" in preview.target_columns
    assert len(first.source) == len(preview.source_columns)
    assert len(first.result) == len(preview.target_columns)


def test_preview_changes_after_a_rule_step_is_added(demo_plan, analyst):
    entity = _accounts(demo_plan)
    field = entity.fields.get(target_column="name")
    before = entity_preview(entity=entity, limit=10)
    index = before.target_columns.index("name")
    step_add(field=field, user=analyst, rule="upper")
    after = entity_preview(entity=entity, limit=10)
    ok = [i for i, r in enumerate(after.rows) if r.status == "ok"]
    assert ok
    row = ok[0]
    assert after.rows[row].result[index].value == before.rows[row].result[index].value.upper()


def test_preview_reports_a_bad_rule_instead_of_raising(demo_plan):
    entity = _accounts(demo_plan)
    step = entity.fields.get(target_column="name").steps.first()
    step.rule, step.params = "truncate", {"length": "many"}
    step.save()
    preview = entity_preview(entity=entity, limit=5)
    assert preview.rows == []
    assert "length" in preview.error


def test_preview_resolves_parent_keys_like_a_dry_run(demo_plan):
    preview = entity_preview(entity=demo_plan.entities.get(name="contacts"), limit=20)
    index = preview.target_columns.index("account_id")
    resolved = [r.result[index].value for r in preview.rows if r.status == "ok"]
    assert resolved
    assert all(v for v in resolved)


def test_preview_answers_50_random_rows_in_a_bounded_number_of_queries(
    demo_plan, django_assert_max_num_queries
):
    entity = _accounts(demo_plan)
    entity_preview(entity=entity, limit=50)  # warm the schema cache and imports
    with django_assert_max_num_queries(12):
        preview = entity_preview(entity=entity, limit=50, order="random")
    assert len(preview.rows) == 50
    assert len({r.key for r in preview.rows}) == 50


def test_preview_columns_follow_the_target_table_order_mapped_or_not(demo_plan):
    entity = _accounts(demo_plan)
    entity.fields.get(target_column="phone").delete()
    preview = entity_preview(entity=entity, limit=5)
    table = system_table(demo_plan.target, "accounts").column_names
    mapped = set(entity.fields.values_list("target_column", flat=True))
    assert [c.name for c in preview.columns] == list(table)
    assert preview.target_columns == [c for c in table if c in mapped]
    assert [c.column for c in preview.rows[0].cells] == list(table)
    phone = next(c for c in preview.columns if c.name == "phone")
    assert (phone.mapped, phone.sources) == (False, [])


def test_preview_failing_cells_name_the_rule_and_show_their_source(demo_plan):
    entity = _accounts(demo_plan)
    preview = entity_preview(entity=entity, limit=100)
    chains = {
        f.target_column: {s.rule for s in f.steps.all()} | {"required"}
        for f in entity.fields.prefetch_related("steps")
    }
    bad = [c for r in preview.rows if r.status == "failed" for c in r.cells if c.error]
    assert bad
    assert all(c.rule in chains[c.column] for c in bad), {(c.column, c.rule) for c in bad}
    email = next(c for r in preview.rows for c in r.cells if c.column == "email")
    assert email.source is not None
