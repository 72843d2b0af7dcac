"""Issue 17.7: bounded uploads: a size limit while streaming, binary and zip-bomb files refused
before parsing, deeply nested JSON refused (not a 500), lookup CSVs written in bulk."""

from __future__ import annotations

import os
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mappings.models import System
from mappings.services_lookups import lookup_import_csv
from mappings.services_systems import system_upload_file
from migration_planner.lib.errors import ApplicationError
from runs.engine.errors import StagingError
from runs.engine.file_guard import xlsx_check
from tests.factories import LookupTableFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def file_system(tmp_path, settings):
    settings.MP_SYSTEMS_DIR = tmp_path
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return System.objects.create(name="uploads", kind="file", role="source")


def test_random_binary_is_refused_not_staged_as_zero_rows(file_system, analyst):
    upload = SimpleUploadedFile("data.csv", os.urandom(4096) + b"\x00" + os.urandom(100))
    with pytest.raises(ApplicationError, match="binary file"):
        system_upload_file(system=file_system, user=analyst, upload=upload)
    file_system.refresh_from_db()
    assert file_system.path == ""


def test_deeply_nested_json_file_is_refused(file_system, analyst):
    body = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    upload = SimpleUploadedFile("deep.json", body)
    with pytest.raises(ApplicationError, match="too deeply"):
        system_upload_file(system=file_system, user=analyst, upload=upload)


def test_deeply_nested_json_body_is_a_400(client_for, analyst):
    body = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client_for(analyst).post("/api/systems/", body, content_type="application/json")
    assert response.status_code == 400
    assert "too deeply" in response.json()["detail"]


def _xlsx(tmp_path, sheet_xml: bytes):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
    return path


def test_xlsx_zip_bomb_is_refused_before_parsing(tmp_path):
    head = b'<?xml version="1.0"?><worksheet><dimension ref="A1:B2"/><sheetData>'
    bomb = _xlsx(tmp_path, head + b"<row/>" * 4_000_000 + b"</sheetData></worksheet>")
    assert bomb.stat().st_size < 200_000  # ~24 MB of XML in a small file
    with pytest.raises(StagingError, match="zip bomb"):
        xlsx_check(bomb)


def test_xlsx_declaring_too_many_cells_is_refused(tmp_path):
    sheet = (
        b'<?xml version="1.0"?><worksheet xmlns="x"><dimension ref="A1:ZZ1048576"/>'
        b"<sheetData/></worksheet>"
    )
    with pytest.raises(StagingError, match="declares 736,100,352 cells"):
        xlsx_check(_xlsx(tmp_path, sheet))


def test_upload_over_the_limit_is_refused_while_streaming(
    client_for, analyst, file_system, settings
):
    settings.MP_UPLOAD_MAX_BYTES = 64 * 1024
    big = SimpleUploadedFile("big.csv", b"id,name\n" + b"1,abcdefgh\n" * 20_000)
    response = client_for(analyst).post(f"/systems/{file_system.uuid}/upload/", {"file": big})
    assert response.status_code == 400
    assert "larger than the upload limit" in response.content.decode()
    file_system.refresh_from_db()
    assert file_system.path == ""
    small = SimpleUploadedFile("small.csv", b"id,name\n1,a\n")
    ok = client_for(analyst).post(f"/systems/{file_system.uuid}/upload/", {"file": small})
    assert ok.status_code == 200


def test_lookup_csv_is_written_in_bulk(analyst, django_assert_max_num_queries):
    table = LookupTableFactory()
    text = "key,value\n" + "".join(f"k{i},v{i}\n" for i in range(5000))
    with django_assert_max_num_queries(40):
        assert lookup_import_csv(lookup=table, user=analyst, text=text) == 5000
    assert table.entries.count() == 5000
    assert table.entries.model.history.filter(table_id=table.pk).count() == 5000
    changed = text.replace("v1\n", "changed\n")
    with django_assert_max_num_queries(40):
        lookup_import_csv(lookup=table, user=analyst, text=changed)
    assert table.entries.get(key="k1").value == "changed"
