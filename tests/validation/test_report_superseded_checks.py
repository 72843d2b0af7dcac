"""Under a superseded report (its run rolled back after it passed) no check reads as a live
pass: the checks, the accounting's balance and the key diffs show their old status as
history ("passed (before the rollback)", muted), on the page and in the HTML, PDF and CSV
exports. Real PostgreSQL, eager Celery. The PDF's pages: artifacts/screenshots/
report-superseded-03-pdf-*.png."""
# ruff: noqa: F811 -- fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest

from runs.models import Run
from runs.services import run_rollback_request
from tests.runs.conftest import eager_celery  # noqa: F401
from tests.support.runs import run_finished
from tests.web.browser import SHOTS

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
HISTORY = "(before the rollback)"


def _superseded(plan, user) -> Run:
    run = run_finished(plan, user)
    run_rollback_request(run=run, user=user, enqueue=False)
    return run


def _badges(html: str, table: str) -> str:
    start = html.index(f'id="{table}"')
    return html[start : html.index("</table>", start)]


def test_a_superseded_reports_checks_show_their_status_as_history(
    eager_celery, demo_plan, operator, viewer, client_for
):
    run = _superseded(demo_plan, operator)
    client = client_for(viewer)
    for url in (f"/runs/{run.uuid}/report/", f"/runs/{run.uuid}/report/export/html/"):
        html = client.get(url).content.decode()
        for table in ("checks", "accounting", "key-diffs"):
            part = _badges(html, table)
            assert "status-passed" not in part, (url, table)
            assert "status-history" in part, (url, table)
        assert f"passed {HISTORY}" in _badges(html, "checks")
        assert f"balanced {HISTORY}" in _badges(html, "accounting")
        assert f"identical {HISTORY}" in _badges(html, "key-diffs")


def test_a_superseded_reports_csv_says_every_status_is_from_before_the_rollback(
    eager_celery, demo_plan, operator, viewer, client_for
):
    run = _superseded(demo_plan, operator)
    text = client_for(viewer).get(f"/runs/{run.uuid}/report/export/csv/").content.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][4] == "superseded"
    statuses = [r[4] for r in rows[2:] if r[0] != "changed value"]
    assert statuses and all(s.endswith(f" {HISTORY}") for s in statuses), statuses
    assert "passed (before the rollback)" in statuses


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler) missing")
def test_a_superseded_reports_pdf_shows_no_live_pass(
    eager_celery, demo_plan, operator, viewer, client_for, tmp_path
):
    run = _superseded(demo_plan, operator)
    pdf = client_for(viewer).get(f"/runs/{run.uuid}/report/export/pdf/").content
    (tmp_path / "r.pdf").write_bytes(pdf)
    text = subprocess.run(  # noqa: S603 - our own file, a fixed tool
        ["pdftotext", str(tmp_path / "r.pdf"), "-"],  # noqa: S607 - on PATH
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if shutil.which("pdftoppm"):  # its pages, kept as artifacts to look at
        SHOTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - our own file, a fixed tool
            ["pdftoppm", "-png", "-r", "70"]  # noqa: S607 - on PATH
            + [str(tmp_path / "r.pdf"), str(SHOTS / "report-superseded-03-pdf")],
            check=True,
        )
    words = " ".join(text.split())
    assert "Superseded by rollback of run" in words
    assert words.count("passed (before the rollback)") >= 1
    # every "passed" in the document is one from before the rollback
    assert words.count("passed") == words.count("passed (before the rollback)"), words
