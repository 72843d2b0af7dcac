"""The plan document a signer signs names the exact version and its hash on every PDF page
(issue 18), and lists every lookup entry; an edited plan says "unversioned draft" on every
page and shows no hash."""
# ruff: noqa: F811 -- the demo fixture is imported from test_document

from __future__ import annotations

import shutil
import subprocess

import pytest

from mappings.models import FieldMapping
from mappings.services import plan_version_create
from migration_planner.plan_document import plan_document_pdf
from tests.mappings.test_document import demo  # noqa: F401 -- a fixture

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler's pdftotext"),
]


def _pages(plan) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"],
        input=plan_document_pdf(plan=plan),
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [" ".join(page.split()) for page in text.split("\f") if page.strip()]


def test_every_pdf_page_names_the_version_and_its_hash(demo, analyst):
    version = plan_version_create(plan=demo, user=analyst)
    pages = _pages(demo)
    assert len(pages) >= 3
    stamp = f"version {version.number} · sha256 {version.content_hash}"
    assert [n for n, page in enumerate(pages, 1) if stamp not in page] == []
    everything = " ".join(pages)
    for lookup in demo.lookups.prefetch_related("entries"):
        missing = [e.value for e in lookup.entries.all() if e.value not in everything]
        assert missing == [], lookup.name


def test_an_edited_plan_is_an_unversioned_draft_on_every_page(demo, analyst):
    version = plan_version_create(plan=demo, user=analyst)
    field = FieldMapping.objects.filter(entity__plan=demo).first()
    field.notes = "changed after the version"
    field.save()
    pages = _pages(demo)
    assert all("unversioned draft" in page for page in pages)
    assert not any(version.content_hash in page for page in pages)
