"""Issue 17.10: CSV exports neutralise formula cells; the Markdown plan document escapes HTML."""

from __future__ import annotations

import csv
import io

import pytest

from mappings.models import PlanVersion
from mappings.services_lookups import lookup_export_csv, lookup_import_csv
from migration_planner.lib.csv_safe import csv_cell
from migration_planner.plan_document import plan_document_markdown
from runs.models import FailedRecord, Run
from tests.factories import EntityMappingFactory, LookupEntryFactory, LookupTableFactory

pytestmark = pytest.mark.django_db
FORMULAS = ['=HYPERLINK("http://x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1"]


def test_csv_cell_quotes_formulas_but_not_numbers():
    assert [csv_cell(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    assert [csv_cell(v) for v in ("-5", "+1.5", "plain", 7, None)] == [
        "-5",
        "+1.5",
        "plain",
        7,
        None,
    ]


def test_lookup_export_is_neutralised_and_imports_back_unchanged(analyst):
    table = LookupTableFactory()
    for i, value in enumerate(FORMULAS):
        LookupEntryFactory(table=table, key=f"k{i}", value=value)
    text = lookup_export_csv(lookup=table)
    cells = [row[1] for row in csv.reader(io.StringIO(text))][1:]
    assert all(c.startswith("'") for c in cells)
    lookup_import_csv(lookup=table, user=analyst, text=text)
    assert sorted(table.entries.values_list("value", flat=True)) == sorted(FORMULAS)


def test_error_queue_export_is_neutralised(client_for, viewer):
    entity = EntityMappingFactory()
    version = PlanVersion.objects.create(plan=entity.plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=entity.plan, version=version, target=entity.plan.target)
    FailedRecord.objects.create(
        run=run,
        entity=entity.name,
        source_key="=1+2",
        stage="load",
        category="c",
        message="@evil",
        source_row={"a": "=x"},
    )
    response = client_for(viewer).get(f"/runs/{run.uuid}/errors/export.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][2] == "'=1+2" and rows[1][7] == "'@evil"


def test_markdown_plan_document_escapes_html():
    entity = EntityMappingFactory()
    plan = entity.plan
    plan.name = "<img src=x onerror=alert(1)>"
    plan.description = "<script>alert('x')</script>\nsecond line"
    plan.save()
    text = plan_document_markdown(plan=plan)
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
