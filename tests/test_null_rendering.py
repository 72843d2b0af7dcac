"""A null is shown one way everywhere: NULL (in HTML a <span class="null">NULL</span>) — in
the preview, the error queue, the profile, the history and diffs, the plan document."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from mappings.preview import entity_preview
from mappings.services_versions import snapshot_diff
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
OTHER_NULLS = re.compile(r"∅|>null<|\"\(null\)\"|>Null<")


def test_no_template_or_module_renders_a_null_another_way():
    files = [
        *ROOT.joinpath("templates").rglob("*.html"),
        *(
            p
            for app in ("mappings", "runs", "validation", "migration_planner")
            for p in ROOT.joinpath(app).rglob("*.py")
            if "migrations" not in p.parts
        ),
    ]
    found = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()[:80]}"
        for p in files
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if OTHER_NULLS.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []


@pytest.mark.django_db
def test_the_preview_and_a_diff_show_null_as_NULL(client_for, analyst, demo_plan):  # noqa: F811
    entity = demo_plan.entities.get(name="accounts")
    preview = entity_preview(entity=entity, limit=20)
    assert any(c.value is None for r in preview.rows for c in r.result)
    body = (
        client_for(analyst)
        .get(
            reverse("mappings:entity_preview", kwargs={"slug": demo_plan.slug, "uuid": entity.uuid})
        )
        .content.decode()
    )
    assert '<span class="null">NULL</span>' in body and ">null<" not in body
    old = {"entities": [{"name": "e", "fields": [{"target": "t", "default": None}]}]}
    new = {"entities": [{"name": "e", "fields": [{"target": "t", "default": "x"}]}]}
    details = [d for c in snapshot_diff(old, new) for d in c.details]
    assert any(d.startswith("default: NULL ⇒") for d in details), details
