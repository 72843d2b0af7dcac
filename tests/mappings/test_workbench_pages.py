"""Systems, plans, milestones, lookups and versions pages: role rules, messages, N+1 guards."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mappings.models import FileUpload, LookupEntry, Milestone, Plan, System
from mappings.services_uploads import file_upload_stage
from tests.factories import LookupTableFactory, PlanFactory, SystemFactory
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.parametrize(
    "url_name,factory",
    [("mappings:plan_list", PlanFactory), ("mappings:system_list", SystemFactory)],
)
def test_list_pages_have_no_n_plus_one(
    client_for, analyst, django_assert_num_queries, url_name, factory
):
    client = client_for(analyst)
    factory()
    client.get(reverse(url_name))  # warm up session / permission caches
    with CaptureQueriesContext(connection) as one_item:
        client.get(reverse(url_name))
    factory(), factory()
    with django_assert_num_queries(len(one_item.captured_queries)):
        client.get(reverse(url_name))


def test_system_create_keeps_secret_write_only(client_for, analyst):
    client = client_for(analyst)
    response = client.post(
        reverse("mappings:system_create"),
        {
            "name": "CRM PG",
            "kind": "postgresql",
            "environment": "dev",
            "role": "source",
            "host": "127.0.0.1",
            "port": "5432",
            "database": "crm",
            "username": "u",
            "secret": "s3cret-value",
        },
    )
    system = System.objects.get(name="CRM PG")
    edit = client.get(reverse("mappings:system_edit", args=[system.uuid])).content.decode()
    client.post(
        reverse("mappings:system_edit", args=[system.uuid]),
        {
            "name": "CRM PG",
            "kind": "postgresql",
            "environment": "dev",
            "role": "source",
            "host": "127.0.0.1",
            "port": "5432",
            "database": "crm",
            "username": "u",
            "secret": "",
        },
    )
    system.refresh_from_db()
    assert response.status_code == 302
    assert "s3cret-value" not in edit
    assert system.connection_params()["password"] == "s3cret-value"


def test_viewer_cannot_create_or_delete_systems(client_for, viewer, demo_systems):
    client = client_for(viewer)
    create = client.post(reverse("mappings:system_create"), {"name": "x", "kind": "sqlite"})
    delete = client.post(reverse("mappings:system_delete", args=[demo_systems[0].uuid]))
    assert (create.status_code, delete.status_code) == (403, 403)
    assert System.objects.count() == 2


def test_system_delete_is_refused_while_plans_use_it(client_for, analyst, demo_plan):
    response = client_for(analyst).post(
        reverse("mappings:system_delete", args=[demo_plan.source.uuid]), follow=True
    )
    assert "used by plan(s): Legacy CRM → New CRM" in response.content.decode()
    assert System.objects.filter(pk=demo_plan.source.pk).exists()


def test_test_connection_reports_version_and_tables(client_for, analyst, demo_systems):
    ok = (
        client_for(analyst)
        .post(reverse("mappings:system_test", args=[demo_systems[0].uuid]), **HTMX)
        .content.decode()
    )
    broken = SystemFactory(kind="postgresql", host="127.0.0.1", port=1, database="nope")
    bad = (
        client_for(analyst)
        .post(reverse("mappings:system_test", args=[broken.uuid]), **HTMX)
        .content.decode()
    )
    assert "Connected: SQLite 3." in ok and "customers (~" in ok
    assert "Connection failed:" in bad


def test_schema_page_lists_columns_types_and_keys(client_for, viewer, demo_systems):
    body = (
        client_for(viewer)
        .get(reverse("mappings:system_schema", args=[demo_systems[1].uuid]))
        .content.decode()
    )
    assert "<code>accounts</code>" in body and "varchar(80)" in body and "primary" in body


def _file_system(analyst, client):
    client.post(
        reverse("mappings:system_create"),
        {"name": "Exports", "kind": "file", "environment": "dev", "role": "source"},
    )
    return System.objects.get(name="Exports")


def _stage_queued() -> None:
    """What the Celery worker does with each queued upload (tests/security has the real one)."""
    for pk in FileUpload.objects.filter(status="queued").values_list("pk", flat=True):
        file_upload_stage(upload_id=pk)


def test_file_upload_stages_into_the_systems_sqlite(client_for, analyst, settings, tmp_path):
    settings.MEDIA_ROOT, settings.DATA_DIR = str(tmp_path / "media"), tmp_path
    client = client_for(analyst)
    system = _file_system(analyst, client)
    upload = SimpleUploadedFile("people.csv", b"id;name\n1;Ann\n2;Bob\n")
    response = client.post(reverse("mappings:system_upload", args=[system.uuid]), {"file": upload})
    queued = client.get(response["Location"]).content.decode()
    _stage_queued()
    system.refresh_from_db()
    body = client.get(response["Location"]).content.decode()
    assert response.status_code == 303
    assert "Waiting for a worker to parse it" in queued
    assert "Staged <strong>2</strong> rows into table <code>people</code>" in body
    assert "delimiter <code>;</code>" in body
    assert system.path == str(tmp_path / "staging" / f"{system.uuid}.sqlite3")
    record = FileUpload.objects.get()
    assert (
        tmp_path / "media" / "uploads" / str(system.uuid) / str(record.uuid) / "people.csv"
    ).exists()
    assert (record.columns, record.preview) == (["id", "name"], [["1", "Ann"], ["2", "Bob"]])


def test_bad_upload_names_the_row(client_for, analyst, viewer, settings, tmp_path):
    settings.MEDIA_ROOT, settings.DATA_DIR = str(tmp_path / "media"), tmp_path
    client = client_for(analyst)
    system = _file_system(analyst, client)
    upload = SimpleUploadedFile("bad.json", b'[{"a": 1},\n 5]')
    response = client.post(reverse("mappings:system_upload", args=[system.uuid]), {"file": upload})
    _stage_queued()
    record = FileUpload.objects.get()
    status = client.get(reverse("mappings:upload_status", args=[system.uuid, record.uuid]))
    assert response.status_code == 303
    assert status.status_code == 286  # htmx stops polling
    assert "bad.json: record 2: expected an object, got int (row 2)" in status.content.decode()
    assert (record.status, record.error_row) == ("failed", 2)
    page = client_for(viewer).get(reverse("mappings:system_detail", args=[system.uuid]))
    assert "bad.json: record 2: expected an object" in page.content.decode()  # viewers see it
    assert "Upload and stage" not in page.content.decode()  # but cannot upload


def test_plan_create_and_edit(client_for, analyst, demo_systems):
    client = client_for(analyst)
    source, target = demo_systems
    data = {
        "name": "CRM wave 2",
        "source": source.pk,
        "target": target.pk,
        "strategy": "phased",
        "batch_size": 500,
        "parallelism": 2,
        "failure_threshold_pct": "5",
        "description": "",
    }
    created = client.post(reverse("mappings:plan_create"), data)
    plan = Plan.objects.get(name="CRM wave 2")
    client.post(
        reverse("mappings:plan_edit", args=[plan.slug]),
        {**data, "batch_size": 750, "rollback_on_threshold": "on"},
    )
    plan.refresh_from_db()
    assert created.status_code == 302 and plan.slug == "crm-wave-2"
    assert (plan.batch_size, plan.rollback_on_threshold, plan.owner) == (750, True, analyst)


def test_viewer_cannot_create_plans(client_for, viewer, demo_systems):
    response = client_for(viewer).post(reverse("mappings:plan_create"), {"name": "x"})
    assert response.status_code == 403


def test_milestones_add_edit_delete_via_htmx(client_for, analyst, demo_plan):
    client = client_for(analyst)
    Milestone.objects.filter(plan=demo_plan).delete()
    add = client.post(
        reverse("mappings:milestone_add", args=[demo_plan.slug]),
        {"phase": "Cutover", "start": "2026-03-01", "end": "2026-03-07", "deliverable": "go-live"},
        **HTMX,
    )
    milestone = demo_plan.milestones.get()
    client.post(
        reverse("mappings:milestone_edit", args=[demo_plan.slug, milestone.pk]),
        {"phase": "Cutover", "start": "2026-03-01", "end": "2026-03-09"},
        **HTMX,
    )
    milestone.refresh_from_db()
    client.post(reverse("mappings:milestone_delete", args=[demo_plan.slug, milestone.pk]), **HTMX)
    assert "Cutover" in add.content.decode()
    assert str(milestone.end) == "2026-03-09"
    assert demo_plan.milestones.count() == 0


def test_lookup_rows_edit_and_csv_roundtrip(client_for, analyst, demo_plan):
    client = client_for(analyst)
    lookup = demo_plan.lookups.get(name="account-status")
    base = {"slug": demo_plan.slug, "uuid": lookup.uuid}
    client.post(
        reverse("mappings:lookup_entry_add", kwargs=base), {"key": "X", "value": "Gone"}, **HTMX
    )
    entry = lookup.entries.get(key="X")
    client.post(
        reverse("mappings:lookup_entry_edit", kwargs={**base, "pk": entry.pk}),
        {"key": "X", "value": "Closed"},
        **HTMX,
    )
    csv_text = client.get(reverse("mappings:lookup_download", kwargs=base)).content.decode()
    assert "X,Closed" in csv_text
    assert csv_text.startswith("key,value\n")


def test_lookup_csv_upload_errors_name_the_row(client_for, analyst, demo_plan):
    lookup = demo_plan.lookups.get(name="account-status")
    url = reverse("mappings:lookup_upload", kwargs={"slug": demo_plan.slug, "uuid": lookup.uuid})
    bad = io.BytesIO(b"key,value\n1,Active\n2,Inactive,extra\n")
    bad.name = "status.csv"
    response = client_for(analyst).post(url, {"file": bad}, follow=True)
    assert "status.csv: Line 3: expected 2 columns" in response.content.decode()
    assert lookup.entries.count() == 4


def test_lookup_csv_upload_replaces_rows(client_for, analyst, demo_plan):
    lookup = LookupTableFactory(plan=demo_plan, name="colours")
    LookupEntry.objects.create(table=lookup, key="old", value="x")
    url = reverse("mappings:lookup_upload", kwargs={"slug": demo_plan.slug, "uuid": lookup.uuid})
    good = io.BytesIO(b"key,value\nR,Red\nG,Green\n")
    good.name = "c.csv"
    client_for(analyst).post(url, {"file": good})
    assert dict(lookup.entries.values_list("key", "value")) == {"G": "Green", "R": "Red"}


def test_viewer_cannot_edit_lookup_rows(client_for, viewer, demo_plan):
    lookup = demo_plan.lookups.get(name="account-status")
    url = reverse("mappings:lookup_entry_add", kwargs={"slug": demo_plan.slug, "uuid": lookup.uuid})
    assert client_for(viewer).post(url, {"key": "Z", "value": "z"}).status_code == 403


def test_plan_yaml_export_and_document_are_wired(client_for, viewer, demo_plan):
    client = client_for(viewer)
    yaml_response = client.get(reverse("mappings:plan_yaml", args=[demo_plan.slug]))
    doc = client.get(reverse("mappings:plan_document", args=[demo_plan.slug]))
    assert yaml_response.status_code == 200 and b"accounts" in yaml_response.content
    assert doc.status_code == 200 and b"accounts" in doc.content


def test_staged_file_reaches_a_worker_on_another_host(client_for, analyst, settings, tmp_path):
    """The staging database lives in the application database too: a worker whose disk does
    not have the web host's file (another DATA_DIR, the file deleted) reads the same rows."""
    from runs.connections import connector_for, connectors_close

    settings.MEDIA_ROOT, settings.DATA_DIR = str(tmp_path / "media"), tmp_path / "web"
    client = client_for(analyst)
    system = _file_system(analyst, client)
    upload = SimpleUploadedFile("people.csv", b"id;name\n1;Ann\n2;Bob\n3;Cy\n")
    client.post(reverse("mappings:system_upload", args=[system.uuid]), {"file": upload})
    _stage_queued()
    system.refresh_from_db()
    web_file = tmp_path / "web" / "staging" / f"{system.uuid}.sqlite3"
    assert system.path == str(web_file)
    web_file.unlink()  # the worker host never sees the web host's disk
    settings.DATA_DIR = tmp_path / "worker"
    try:
        assert connector_for(system).count("people") == 3
    finally:
        connectors_close()
    copies = list((tmp_path / "worker" / "staging").glob(f"{system.uuid}-*.sqlite3"))
    assert len(copies) == 1
