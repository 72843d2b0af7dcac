"""Issue 17.7: bounded uploads: a size limit while streaming, binary and zip-bomb files refused
before parsing, deeply nested JSON refused (not a 500), lookup CSVs written in bulk."""

from __future__ import annotations

import os
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mappings.models import FileUpload, System
from mappings.services_lookups import lookup_import_csv
from mappings.services_uploads import file_upload_receive, file_upload_stage
from runs.engine.errors import StagingError
from runs.engine.files.guard import xlsx_check
from tests.factories import LookupTableFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def file_system(tmp_path, settings):
    settings.MP_SYSTEMS_DIR = tmp_path
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return System.objects.create(name="uploads", kind="file", role="source")


def _stage(system, user, upload) -> FileUpload:
    """What the request and then the worker do, inline."""
    record = file_upload_receive(system=system, user=user, upload=upload)
    return file_upload_stage(upload_id=record.pk)


def test_random_binary_is_refused_not_staged_as_zero_rows(file_system, analyst):
    upload = SimpleUploadedFile("data.csv", os.urandom(4096) + b"\x00" + os.urandom(100))
    staged = _stage(file_system, analyst, upload)
    assert staged.status == "failed"
    assert "binary file" in staged.error
    file_system.refresh_from_db()
    assert file_system.path == ""


def test_deeply_nested_json_file_is_refused(file_system, analyst):
    body = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    staged = _stage(file_system, analyst, SimpleUploadedFile("deep.json", body))
    assert (staged.status, staged.rows) == ("failed", None)
    assert "too deeply" in staged.error


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
    assert response.status_code == 413
    assert "“big.csv” is larger than the upload limit of 0.0625 MB" in response.content.decode()
    assert FileUpload.objects.count() == 0
    big.seek(0)
    api = client_for(analyst).post(f"/api/systems/{file_system.uuid}/upload/", {"file": big})
    assert api.status_code == 413
    assert "is larger than the upload limit" in api.json()["detail"]
    assert FileUpload.objects.count() == 0
    small = SimpleUploadedFile("small.csv", b"id,name\n1,a\n")
    ok = client_for(analyst).post(f"/systems/{file_system.uuid}/upload/", {"file": small})
    assert ok.status_code == 303
    assert FileUpload.objects.get().status == "queued"


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


def _tracemalloc_peak(action) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["csv", "json", "xml"])
def test_staging_reads_a_file_in_bounded_memory(tmp_path, fmt):
    """A 2-4 MB file is staged while Python never holds more than 3/4 of its size: the
    parser streams it and writes 1,000-row chunks (the old parser held the bytes, the text
    and every row at once: several times the file's size)."""
    from runs.engine.files import stage_file

    rows = 20_000 if fmt == "xml" else 40_000  # the XML parser is slow under tracemalloc
    line = "{n},Name {n} Zoé,user{n}@example.com,Besançon,{n}.25,2024-01-02,padding-padding\n"
    if fmt == "csv":
        body = "id,name,email,city,amount,created,note\n" + "".join(
            line.format(n=n) for n in range(rows)
        )
    elif fmt in ("json", "jsonl"):
        record = (
            '{{"id": {n}, "name": "Name {n} Zoé", "email": "user{n}@example.com", '
            '"city": "Besançon", "amount": {n}.25, "note": "padding-padding"}}'
        )
        sep = ",\n" if fmt == "json" else "\n"
        body = sep.join(record.format(n=n) for n in range(rows))
        body = f"[{body}]" if fmt == "json" else body
    else:
        record = (
            '<c id="{n}"><name>Name {n} Zoé</name><email>user{n}@example.com</email>'
            "<city>Besançon</city><amount>{n}.25</amount><note>padding-padding</note></c>\n"
        )
        body = "<customers>\n" + "".join(record.format(n=n) for n in range(rows)) + "</customers>"
    path = tmp_path / f"big.{fmt}"
    path.write_text(body, encoding="utf-8")
    size = path.stat().st_size
    assert size > 2_000_000
    seen: list[tuple[int, int]] = []

    peak = _tracemalloc_peak(
        lambda: seen.append(
            stage_file(
                path,
                dest=str(tmp_path / "stage.sqlite3"),
                table="big",
                chunk_rows=1000,
                progress=lambda n, b: seen.append((n, b)),
            ).rows
        )
    )

    assert seen[-1] == rows
    assert [n for n, _ in seen[:-1]] == list(range(1000, rows + 1, 1000))
    assert all(0 < b <= size for _, b in seen[:-1])
    assert peak < size * 3 / 4, (peak, size)


def test_xlsx_with_huge_shared_strings_is_refused_before_parsing(tmp_path, monkeypatch):
    """openpyxl holds every shared string in memory: the part's size is capped (the limit is
    64 MB; lowered here to keep the file small)."""
    from runs.engine.files import guard

    monkeypatch.setattr(guard, "XLSX_MAX_SHARED_STRINGS_BYTES", 1_000_000)
    items = b"".join(b"<si><t>%d-%x</t></si>" % (n, n * 7919) for n in range(60_000))
    strings = b'<?xml version="1.0"?><sst>' + items + b"</sst>"
    path = _xlsx(tmp_path, b'<?xml version="1.0"?><worksheet/>')
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/sharedStrings.xml", strings)
    with pytest.raises(StagingError, match=f"shared strings unpack to {len(strings):,} bytes"):
        xlsx_check(path)


def test_xlsx_with_an_entity_declaration_is_refused(tmp_path):
    """openpyxl parses through defusedxml: an entity in a workbook part is refused, not
    expanded ("billion laughs" inside an XLSX)."""
    from runs.engine.files import stage_file

    book = tmp_path / "lol.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["id", "name"])
    wb.active.append([1, "x"])
    wb.save(book)
    sheet = zipfile.ZipFile(book).read("xl/worksheets/sheet1.xml")
    laughs = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    sheet = laughs + sheet.split(b"?>", 1)[-1].replace(b">x<", b">&lol2;<")
    rebuilt = tmp_path / "rebuilt.xlsx"
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(rebuilt, "w") as out:
        for item in src.infolist():
            data = sheet if item.filename == "xl/worksheets/sheet1.xml" else src.read(item)
            out.writestr(item, data)
    with pytest.raises(StagingError, match="entit"):
        stage_file(rebuilt, dest=str(tmp_path / "s.sqlite3"), table="t")
