"""Issue 17.7: uploads are parsed by a real Celery worker process, not by the web request; the
page and the API show progress and then the result, or the error with its row."""

# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments
from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from mappings.models import FileUpload, System
from tests.runs.conftest import start_worker  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.celery]
ROWS = 30_000


def _wait(upload: dict, client, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/file-uploads/{upload['uuid']}/").json()
        if body["status"] in ("staged", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"upload still {body['status']} after {timeout}s")


def test_a_worker_parses_uploads_the_request_only_keeps_them(client_for, analyst, start_worker):
    system = System.objects.create(name="exports", kind="file", role="source")
    client = client_for(analyst)
    big = "id,name,city\n" + "".join(f"{n},Name {n},Zoé\n" for n in range(1, ROWS + 1))
    bad = "a,b\n" + "".join(f"{n},x\n" for n in range(1, 57)) + "57,x,extra\n"
    accepted = [
        client.post(
            f"/api/systems/{system.uuid}/upload/",
            {"file": SimpleUploadedFile(name, body.encode()), "table": table},
        )
        for name, body, table in (("people.csv", big, "people"), ("bad.csv", bad, "bad"))
    ]
    assert [r.status_code for r in accepted] == [202, 202]
    good, broken = (r.json() for r in accepted)
    # nothing parsed by the request: queued, 0 rows, no table yet
    assert [(u["status"], u["rows_parsed"], u["rows"]) for u in (good, broken)] == [
        ("queued", 0, None),
        ("queued", 0, None),
    ]
    assert accepted[0]["Location"] == f"/api/file-uploads/{good['uuid']}/"
    # the worker may be on another host: it gets the file from the application database
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "uploads" / str(system.uuid))

    start_worker(concurrency=1)
    good, broken = _wait(good, client), _wait(broken, client)

    assert (good["status"], good["rows"], good["rows_parsed"]) == ("staged", ROWS, ROWS)
    assert good["bytes_read"] == good["size"] == len(big.encode())
    assert good["columns"] == ["id", "name", "city"]
    assert good["preview"][:2] == [["1", "Name 1", "Zoé"], ["2", "Name 2", "Zoé"]]
    assert broken["status"] == "failed"
    assert broken["error"].startswith("bad.csv: line 58 (data row 57), byte ")
    assert broken["error"].endswith(": 3 fields, header has 2")
    assert broken["error_row"] == 57
    system.refresh_from_db()
    with sqlite3.connect(system.path) as conn:
        assert conn.execute("SELECT count(*), max(_row) FROM people").fetchone() == (ROWS, ROWS)
        tables = {t for (t,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "bad" not in tables  # all or nothing
    page = client.get(f"/systems/{system.uuid}/").content.decode()
    assert f"Staged <strong>{ROWS:,}</strong> rows into table <code>people</code>" in page
    assert "bad.csv: line 58 (data row 57), byte " in page
    assert "(row 57)" not in page  # the place is said once (REVIEW9 J1-6)
    # the raw bytes are not kept in the database once staged
    assert FileUpload.objects.filter(blob__isnull=False).count() == 0
