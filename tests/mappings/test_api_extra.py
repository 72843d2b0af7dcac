"""Issue 18 API parity, workbench side: the plan document, drift and re-baseline, the import
validate step, mapping suggestions, profiling and file upload through the REST API."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mappings.models import FieldMapping, FileUpload, System
from mappings.services import plan_version_create
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401
from validation.models import AuditEvent

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_plan_document_in_three_formats(client_for, viewer, demo_plan):
    client = client_for(viewer)
    url = f"/api/plans/{demo_plan.slug}/document/"
    html = client.get(url)
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert demo_plan.name in html.content.decode()
    md = client.get(url + "?format=md")
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    assert md.content.decode().startswith("#") and demo_plan.name in md.content.decode()
    pdf = client.get(url, HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    assert client.get(url + "?format=docx").status_code == 404


def test_drift_report_and_rebaseline(client_for, analyst, viewer, demo_plan):
    url = f"/api/plans/{demo_plan.slug}/drift/"
    refused = client_for(viewer).get(url)
    assert refused.status_code == 400 and "no version yet" in refused.json()["detail"]
    version = plan_version_create(plan=demo_plan, user=analyst)
    report = client_for(viewer).get(url).json()
    assert report["version"] == version.number and report["blocking"] == 0
    assert report["source"] == "Legacy CRM" and report["message"] == ""
    assert {e["entity"] for e in report["entities"]} == {"accounts", "contacts", "orders"}
    same = client_for(viewer).get(f"/api/plans/{demo_plan.slug}/versions/1/drift/").json()
    assert same["version"] == 1
    assert client_for(viewer).post(url + "rebaseline/").status_code == 403
    new = client_for(analyst).post(url + "rebaseline/")
    assert new.status_code == 201, new.content
    assert new.json()["number"] == 2


def test_import_check_writes_nothing_and_names_unknown_columns(client_for, analyst, demo_plan):
    client = client_for(analyst)
    text = client.get(f"/api/plans/{demo_plan.slug}/yaml/").content.decode()
    ok = client.post("/api/plans/import/check/", {"yaml": text}, content_type=JSON)
    assert ok.status_code == 200, ok.content
    assert ok.json()["exists"] is True and ok.json()["problems"] == []
    assert ok.json()["counts"]["entities"] == 3
    bad = text.replace("Cust_Name", "Cust_Nmae", 1)
    checked = client.post("/api/plans/import/check/", {"yaml": bad}, content_type=JSON).json()
    assert len(checked["problems"]) == 1 and "Cust_Nmae" in checked["problems"][0]["message"]
    assert checked["problems"][0]["line"] > 1
    broken = client.post("/api/plans/import/check/", {"yaml": "plan: ["}, content_type=JSON)
    assert broken.status_code == 400 and "line" in broken.json()["detail"]


def test_suggestions_list_and_accept(client_for, analyst, viewer, demo_plan):
    entity = demo_plan.entities.get(name="accounts")
    field = entity.fields.get(target_column="phone")
    source = field.source_columns[0]
    field.delete()
    url = f"/api/plans/{demo_plan.slug}/entities/accounts/suggestions/"
    items = client_for(viewer).get(url).json()
    assert {"source": source, "target": "phone"} in [
        {"source": i["source"], "target": i["target"]} for i in items
    ]
    body = {"source": source, "target": "phone"}
    assert client_for(viewer).post(url, body, content_type=JSON).status_code == 403
    made = client_for(analyst).post(url, body, content_type=JSON)
    assert made.status_code == 201, made.content
    assert FieldMapping.objects.get(entity=entity, target_column="phone").source_columns == [source]
    again = client_for(analyst).post(url, body, content_type=JSON)
    assert again.status_code == 400 and "already mapped" in again.json()["detail"]


def test_table_profile(client_for, viewer, demo_plan):
    url = f"/api/systems/{demo_plan.source.uuid}/tables/customers/profile/"
    profile = client_for(viewer).get(url)
    assert profile.status_code == 200, profile.content
    data = profile.json()
    assert data["table"] == "customers" and data["rows"] == 300
    names = [c["name"] for c in data["columns"]]
    assert "Cust_Name" in names
    missing = client_for(viewer).get(url.replace("customers", "nope"))
    assert missing.status_code == 400 and "nope" in missing.json()["detail"]


def test_file_upload_stages_a_table(client_for, analyst, viewer):
    """The request keeps the file and queues it (202); the worker's staging (run inline
    here; tests/security/test_upload_worker.py has a real worker) ends in the upload's row."""
    from mappings.services_uploads import file_upload_stage

    system = System.objects.create(name="drops", kind="file", role="source")
    url = f"/api/systems/{system.uuid}/upload/"
    upload = SimpleUploadedFile("people.csv", b"id,name\n1,Ann\n2,Bob\n", "text/csv")
    assert client_for(viewer).post(url, {"file": upload}).status_code == 403
    upload.seek(0)
    queued = client_for(analyst).post(url, {"file": upload, "table": "people"})
    assert queued.status_code == 202, queued.content
    bad = SimpleUploadedFile("bad.json", b'{"a": [1, 2', "application/json")
    refused = client_for(analyst).post(url, {"file": bad})
    assert refused.status_code == 202
    for answer in (queued, refused):
        file_upload_stage(upload_id=FileUpload.objects.get(uuid=answer.json()["uuid"]).pk)
    staged = client_for(viewer).get(queued["Location"]).json()
    assert (staged["status"], staged["rows"], staged["columns"]) == ("staged", 2, ["id", "name"])
    failed = client_for(viewer).get(refused["Location"]).json()
    assert failed["status"] == "failed" and failed["error"].startswith("bad.json: line 1")
    assert AuditEvent.objects.filter(object_id=str(system.uuid)).exists()
