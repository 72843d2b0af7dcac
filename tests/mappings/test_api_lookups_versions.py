"""The workbench REST API for lookups, milestones, preview, versions and YAML
import/export."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest

from mappings.models import LookupTable
from tests.mappings.api_helpers import name_field, send
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- lookups, milestones


def test_api_lookup_crud_and_entries(client_for, analyst, demo_plan):
    client = client_for(analyst)
    created = send(
        client,
        "post",
        "/api/lookups/",
        {"plan": demo_plan.slug, "name": "tiers", "default_value": "bronze"},
    )
    url = f"/api/lookups/{created.json()['uuid']}/"
    added = [
        send(client, "post", f"{url}entries/", {"key": k, "value": v})
        for k, v in (("G", "gold"), ("S", "silver"), ("G", "GOLD"))
    ]
    removed = client.delete(f"{url}entries/?key=S")
    entries = client.get(f"{url}entries/").json()
    renamed = send(client, "patch", url, {"description": "Customer tiers"})
    deleted = client.delete(url)
    assert created.status_code == 201
    assert [r.status_code for r in added] == [200, 200, 200]
    assert removed.status_code == 204
    assert entries == [{"key": "G", "value": "GOLD"}]
    assert (renamed.json()["entry_count"], deleted.status_code) == (1, 204)


def test_api_lookup_delete_in_use_names_the_field(client_for, analyst, demo_plan):
    lookup = demo_plan.lookups.get(name="us-states")
    response = client_for(analyst).delete(f"/api/lookups/{lookup.uuid}/")
    assert response.status_code == 400
    assert response.json()["field"] == "lookup"
    assert LookupTable.objects.filter(pk=lookup.pk).exists()


def test_api_lookup_duplicate_name_names_the_field(client_for, analyst, demo_plan):
    response = send(
        client_for(analyst), "post", "/api/lookups/", {"plan": demo_plan.slug, "name": "us-states"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "name"


def test_api_lookup_csv_download_and_upload(client_for, analyst, demo_plan):
    client = client_for(analyst)
    lookup = demo_plan.lookups.get(name="account-status")
    url = f"/api/lookups/{lookup.uuid}/csv/"
    download = client.get(url)
    as_text = client.post(url, "key,value\nA,Active\nX,Gone\n", content_type="text/csv")
    bad = client.post(url, "key,value\nA,Active,extra\n", content_type="text/csv")
    assert download["Content-Type"].startswith("text/csv")
    assert download.content.decode().startswith("key,value\n")
    assert as_text.json() == {"rows": 2}
    assert dict(lookup.entries.values_list("key", "value")) == {"A": "Active", "X": "Gone"}
    assert bad.status_code == 400 and "Line 2" in bad.json()["detail"]


def test_api_lookup_csv_upload_as_file(client_for, analyst, demo_plan):
    from django.core.files.uploadedfile import SimpleUploadedFile

    lookup = demo_plan.lookups.get(name="account-status")
    upload = SimpleUploadedFile("s.csv", b"\xef\xbb\xbfkey,value\n1,Active\n")
    response = client_for(analyst).post(f"/api/lookups/{lookup.uuid}/csv/", {"file": upload})
    assert response.json() == {"rows": 1}
    assert list(lookup.entries.values_list("key", flat=True)) == ["1"]


def test_api_milestone_crud_and_date_order(client_for, analyst, demo_plan):
    client = client_for(analyst)
    created = send(
        client,
        "post",
        "/api/milestones/",
        {"plan": demo_plan.slug, "phase": "Hypercare", "start": "2026-05-01", "end": "2026-05-15"},
    )
    url = f"/api/milestones/{created.json()['id']}/"
    backwards = send(client, "patch", url, {"end": "2026-04-01"})
    deleted = client.delete(url)
    assert (created.status_code, created.json()["position"]) == (201, 6)
    assert backwards.status_code == 400 and backwards.json()["field"] == "end"
    assert deleted.status_code == 204


# --------------------------------------------------------------------------- preview, versions


def test_api_preview_marks_a_failing_cell(client_for, viewer, demo_plan):
    response = send(
        client_for(viewer),
        "post",
        f"/api/plans/{demo_plan.slug}/entities/accounts/preview/",
        {"rows": 100, "sample": "first"},
    )
    body = response.json()
    failed = [r for r in body["rows"] if r["status"] == "failed"]
    assert response.status_code == 200 and body["error"] is None
    assert len(body["rows"]) == 100 and body["failed"] == len(failed) > 0
    assert any(cell["error"] for cell in failed[0]["result"])
    assert body["source_columns"][0] == "Customer_ID" and "name" in body["target_columns"]


def test_api_preview_validates_its_body(client_for, viewer, demo_plan):
    client = client_for(viewer)
    url = f"/api/plans/{demo_plan.slug}/entities/accounts/preview/"
    bad = send(client, "post", url, {"rows": 0, "sample": "middle"})
    missing = send(client, "post", f"/api/plans/{demo_plan.slug}/entities/nope/preview/")
    assert bad.status_code == 400 and set(bad.json()) == {"rows", "sample", "detail", "field"}
    assert bad.json()["field"] == "rows" and "sample: " in bad.json()["detail"]
    assert missing.status_code == 404


def test_api_version_create_diff_revert_round_trip(client_for, analyst, demo_plan):
    client = client_for(analyst)
    base = f"/api/plans/{demo_plan.slug}/versions/"
    first = send(client, "post", base, {"note": "baseline"})
    again = send(client, "post", base, {"note": "unchanged"})
    send(
        client,
        "post",
        "/api/rule-steps/",
        {"field": str(name_field(demo_plan).uuid), "rule": "upper"},
    )
    second = send(client, "post", base, {"note": "upper"})
    diff = client.get(f"{base}diff/?a=1&b=2").json()
    reverted = client.post(f"{base}1/revert/")
    listing = client.get(base).json()
    assert (first.status_code, again.status_code, second.status_code) == (201, 200, 201)
    assert diff["changes"][0]["what"] == "field accounts.name"
    assert "upper" in diff["changes"][0]["details"][0]
    assert reverted.status_code == 200
    assert list(name_field(demo_plan).steps.values_list("rule", flat=True)) == [
        "trim",
        "title",
        "truncate",
    ]
    assert [v["number"] for v in listing] == [2, 1]


def test_api_version_diff_needs_both_numbers(client_for, viewer, demo_plan):
    response = client_for(viewer).get(f"/api/plans/{demo_plan.slug}/versions/diff/?a=1")
    assert response.status_code == 400
    assert response.json()["field"] == "b"


# --------------------------------------------------------------------------- YAML


def test_api_yaml_export_import_round_trip(client_for, analyst, demo_plan):
    client = client_for(analyst)
    exported = client.get(f"/api/plans/{demo_plan.slug}/yaml/")
    text = exported.content.decode()
    copy = text.replace(f"slug: {demo_plan.slug}", "slug: crm-copy", 1).replace(
        f"name: {demo_plan.name}", "name: CRM copy", 1
    )
    created = client.post("/api/plans/import/", copy, content_type="text/yaml")
    again = client.get("/api/plans/crm-copy/yaml/").content.decode()
    replaced = send(client, "post", "/api/plans/import/", {"yaml": text, "replace": True})
    assert exported["Content-Type"].startswith("text/yaml")
    assert created.status_code == 201 and created.json()["slug"] == "crm-copy"
    assert again == copy
    assert replaced.status_code == 201 and replaced.json()["slug"] == demo_plan.slug
    assert client.get(f"/api/plans/{demo_plan.slug}/yaml/").content.decode() == text


def test_api_yaml_import_errors_give_line_and_column(client_for, analyst, demo_plan):
    client = client_for(analyst)
    text = client.get(f"/api/plans/{demo_plan.slug}/yaml/").content.decode()
    clash = client.post("/api/plans/import/", text, content_type="text/yaml")
    broken = send(client, "post", "/api/plans/import/", {"yaml": "plan: [unclosed"})
    assert clash.status_code == 400
    assert clash.json()["field"] == "plan.slug" and clash.json()["line"] > 1
    assert {"line", "column"} <= set(clash.json())
    assert broken.status_code == 400 and "line 1" in broken.json()["detail"]


def test_api_yaml_import_as_file(client_for, analyst, demo_plan):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(analyst)
    text = client.get(f"/api/plans/{demo_plan.slug}/yaml/").content.decode()
    upload = SimpleUploadedFile(
        "plan.yaml",
        text.replace(f"slug: {demo_plan.slug}", "slug: from-file", 1)
        .replace(f"name: {demo_plan.name}", "name: From file", 1)
        .encode(),
    )
    response = client.post("/api/plans/import/", {"file": upload})
    assert response.status_code == 201 and response.json()["slug"] == "from-file"
