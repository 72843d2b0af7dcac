"""Rows the target coerces (issue 14): their error-queue record holds the whole source row
(every source column, mapped or not) and every changed column, even when the batch had no
other failure; the category ``coerced_by_target`` is a known failure category, offered by
the queue's category filter and filterable in the page and the API."""

from __future__ import annotations

import sqlite3

import pytest

from mappings.models import EntityMapping, FieldMapping, Plan, System
from runs.engine.connectors.base import COERCED
from runs.engine.rules import FAILURE_CATEGORIES
from runs.enums import RunStatus
from runs.models import FailedRecord
from runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SOURCE_COLUMNS = ["id", "a", "b", "unmapped_extra", "modified"]


@pytest.fixture
def coercing_plan(tmp_path) -> Plan:
    """A clean 5-row SQLite source into an SQLite target whose trigger rewrites columns a and
    b of the row with a = 'coerce-me' (nothing else fails)."""
    src, dst = tmp_path / "src.sqlite3", tmp_path / "dst.sqlite3"
    conn = sqlite3.connect(src)
    conn.execute(
        "CREATE TABLE src (id INTEGER PRIMARY KEY, a TEXT, b TEXT, unmapped_extra TEXT, "
        "modified TEXT NOT NULL)"
    )
    rows = [
        (i, "coerce-me" if i == 3 else f"a{i}", f"b{i}", f"x{i}", "2026-01-01") for i in range(1, 6)
    ]
    conn.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    conn = sqlite3.connect(dst)
    conn.execute(
        "CREATE TABLE dst (id INTEGER PRIMARY KEY, ext TEXT NOT NULL UNIQUE, a TEXT, b TEXT)"
    )
    conn.execute(
        "CREATE TRIGGER rewrite AFTER INSERT ON dst WHEN NEW.a = 'coerce-me' BEGIN "
        "UPDATE dst SET a = 'rewritten', b = upper(NEW.b) WHERE id = NEW.id; END"
    )
    conn.commit()
    conn.close()
    source = System.objects.create(name="coerce-src", kind="sqlite", path=str(src), role="source")
    target = System.objects.create(
        name="coerce-dst", kind="sqlite", path=str(dst), role="target", environment="uat"
    )
    plan = Plan.objects.create(
        name="Coerced", slug="coerced", source=source, target=target, failure_threshold_pct=100
    )
    entity = EntityMapping.objects.create(
        plan=plan,
        name="things",
        source_table="src",
        target_table="dst",
        source_key=["id"],
        target_key="id",
        external_id="ext",
        load_mode="upsert",
    )
    for position, (target_column, column) in enumerate((("ext", "id"), ("a", "a"), ("b", "b"))):
        FieldMapping.objects.create(
            entity=entity, target_column=target_column, source_columns=[column], position=position
        )
    return plan


def test_coerced_by_target_is_a_known_failure_category():
    assert COERCED in FAILURE_CATEGORIES
    # the target-type checks before the INSERT are categories too
    assert {"required_missing", "too_long", "type_cast"} <= set(FAILURE_CATEGORIES)


def test_a_coerced_row_keeps_its_whole_source_row_and_every_changed_column(
    eager_celery, coercing_plan, client_for, viewer
):
    run = run_create(plan=coercing_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.loaded, run.failed) == (4, 1)
    record = FailedRecord.objects.get(run=run)
    assert record.category == COERCED and record.source_key == "3"
    # the batch had no other failure: the record still holds every source column
    assert sorted(record.source_row) == sorted(SOURCE_COLUMNS)
    assert record.source_row["unmapped_extra"] == "x3"
    assert {(e["field"], e["value"], e["category"]) for e in record.errors} == {
        ("a", "coerce-me", COERCED),
        ("b", "b3", COERCED),
    }

    # the queue offers the category and filters by it: page and API
    client = client_for(viewer)
    page = client.get(f"/runs/{run.uuid}/errors/").content.decode()
    assert f"<option>{COERCED}</option>" in page
    page = client.get(f"/runs/{run.uuid}/errors/", {"category": COERCED, "status": ""})
    assert page.status_code == 200 and list(page.context["records"]) == [record]
    api = client.get("/api/failed-records/", {"run": str(run.uuid), "category": COERCED})
    assert api.status_code == 200
    assert [r["source_key"] for r in api.json()["results"]] == ["3"]
    assert api.json()["results"][0]["source_row"]["unmapped_extra"] == "x3"


def test_an_unknown_category_is_refused_by_name_in_the_page_and_the_api(client_for, viewer):
    client = client_for(viewer)
    api = client.get("/api/failed-records/", {"category": "coerced"})
    assert api.status_code == 400
    message = api.json()["detail"]
    assert "“coerced” is not a failure category" in message and COERCED in message
    page = client.get("/errors/", {"category": "coerced"})
    assert page.status_code == 400
    assert message in page.content.decode().replace("&quot;", '"')
    assert client.get("/errors/export.csv", {"category": "coerced"}).status_code == 400
