"""The workbench REST API: every endpoint's role checks, N+1 guards on the lists, the
schema. Each resource's behaviour: test_api_systems_plans.py, test_api_entities_steps.py,
test_api_lookups_versions.py."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mappings.models import EntityMapping, FieldMapping, LookupTable, Plan, RuleStep, System
from tests.factories import (
    EntityMappingFactory,
    FieldMappingFactory,
    LookupTableFactory,
    MilestoneFactory,
    PlanFactory,
    RuleStepFactory,
)
from tests.mappings.api_helpers import send
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db


def _ids(plan: Plan) -> dict[str, str]:
    entity = plan.entities.get(name="accounts")
    field = entity.fields.get(target_column="name")
    return {
        "slug": plan.slug,
        "system": str(plan.source.uuid),
        "entity": str(entity.uuid),
        "field": str(field.uuid),
        "step": str(field.steps.first().uuid),
        "lookup": str(plan.lookups.get(name="us-states").uuid),
        "milestone": str(plan.milestones.first().pk),
    }


READS = [
    "/api/systems/",
    "/api/systems/{system}/",
    "/api/systems/{system}/schema/",
    "/api/plans/",
    "/api/plans/{slug}/",
    "/api/plans/{slug}/versions/",
    "/api/plans/{slug}/yaml/",
    "/api/entities/?plan={slug}",
    "/api/entities/{entity}/",
    "/api/field-mappings/?entity={entity}",
    "/api/field-mappings/{field}/",
    "/api/rule-steps/?field={field}",
    "/api/rule-steps/{step}/",
    "/api/rule-types/",
    "/api/rule-types/value_map/",
    "/api/lookups/?plan={slug}",
    "/api/lookups/{lookup}/",
    "/api/lookups/{lookup}/entries/",
    "/api/lookups/{lookup}/csv/",
    "/api/milestones/?plan={slug}",
    "/api/milestones/{milestone}/",
]

WRITES = [
    ("post", "/api/systems/", {"name": "x", "kind": "sqlite", "path": "/tmp/x.db"}),
    ("patch", "/api/systems/{system}/", {"description": "x"}),
    ("delete", "/api/systems/{system}/", None),
    ("post", "/api/plans/", {"name": "x"}),
    ("patch", "/api/plans/{slug}/", {"batch_size": 5}),
    ("post", "/api/plans/{slug}/status/", {"status": "in_review"}),
    ("post", "/api/plans/{slug}/versions/", {"note": "x"}),
    ("post", "/api/plans/{slug}/versions/1/revert/", None),
    ("post", "/api/plans/import/", {"yaml": "format: x"}),
    ("post", "/api/plans/{slug}/clone/", {"name": "x"}),
    ("post", "/api/plans/{slug}/archive/", {"archived": True}),
    (
        "post",
        "/api/entities/",
        {"plan": "{slug}", "source_table": "customers", "target_table": "accounts"},
    ),
    ("patch", "/api/entities/{entity}/", {"notes": "x"}),
    ("delete", "/api/entities/{entity}/", None),
    ("post", "/api/field-mappings/", {"entity": "{entity}", "target_column": "phone"}),
    ("patch", "/api/field-mappings/{field}/", {"notes": "x"}),
    ("delete", "/api/field-mappings/{field}/", None),
    ("post", "/api/rule-steps/", {"field": "{field}", "rule": "upper"}),
    ("patch", "/api/rule-steps/{step}/", {"params": {}}),
    ("post", "/api/rule-steps/{step}/move/", {"direction": "down"}),
    ("delete", "/api/rule-steps/{step}/", None),
    ("post", "/api/lookups/", {"plan": "{slug}", "name": "x"}),
    ("patch", "/api/lookups/{lookup}/", {"description": "x"}),
    ("delete", "/api/lookups/{lookup}/", None),
    ("post", "/api/lookups/{lookup}/entries/", {"key": "ZZ", "value": "z"}),
    ("delete", "/api/lookups/{lookup}/entries/?key=NY", None),
    ("post", "/api/lookups/{lookup}/csv/", None),
    (
        "post",
        "/api/milestones/",
        {"plan": "{slug}", "phase": "x", "start": "2026-01-01", "end": "2026-01-02"},
    ),
    ("patch", "/api/milestones/{milestone}/", {"phase": "x"}),
    ("delete", "/api/milestones/{milestone}/", None),
    ("delete", "/api/plans/{slug}/", None),  # last: the analyst's call deletes the plan
]


def _fill(body: dict | None, ids: dict) -> dict | None:
    if body is None:
        return None
    return {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}


def test_api_viewer_reads_every_endpoint(client_for, viewer, demo_plan):
    client, ids = client_for(viewer), _ids(demo_plan)
    codes = {url: client.get(url.format(**ids)).status_code for url in READS}
    assert {url: code for url, code in codes.items() if code != 200} == {}


def _counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (EntityMapping, FieldMapping, RuleStep, LookupTable, System, Plan)
    )


@pytest.mark.parametrize("role", ["viewer", "approver", "operator"])
def test_api_every_write_refused_without_edit_rights(request, client_for, demo_plan, role):
    ids = _ids(demo_plan)
    client = client_for(request.getfixturevalue(role))
    before = _counts()
    codes = {
        f"{method} {url}": send(client, method, url.format(**ids), _fill(body, ids)).status_code
        for method, url, body in WRITES
    }
    assert {call: code for call, code in codes.items() if code != 403} == {}
    assert _counts() == before


def test_api_analyst_passes_the_role_check_on_every_write(client_for, analyst, demo_plan):
    ids = _ids(demo_plan)
    client = client_for(analyst)
    codes = {
        f"{method} {url}": send(client, method, url.format(**ids), _fill(body, ids)).status_code
        for method, url, body in WRITES
    }
    assert {call: code for call, code in codes.items() if code == 403} == {}


def test_api_anonymous_gets_nothing(client, demo_plan):
    assert client.get("/api/rule-types/").status_code in (401, 403)
    assert client.get(f"/api/plans/{demo_plan.slug}/yaml/").status_code in (401, 403)


# --------------------------------------------------------------------------- N+1 guards


def _plans(n: int) -> None:
    for _ in range(n):
        plan = PlanFactory()
        MilestoneFactory(plan=plan)
        lookup = LookupTableFactory(plan=plan)
        lookup.entries.create(key="k", value="v")
        field = FieldMappingFactory(entity=EntityMappingFactory(plan=plan))
        RuleStepFactory(field=field)
        RuleStepFactory(field=field, rule="upper")


LISTS = [
    "/api/systems/",
    "/api/plans/",
    "/api/entities/",
    "/api/field-mappings/",
    "/api/rule-steps/",
    "/api/lookups/",
    "/api/milestones/",
]


@pytest.mark.parametrize("url", LISTS)
def test_api_list_query_count_constant(client_for, viewer, django_assert_num_queries, url):
    client = client_for(viewer)
    _plans(1)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    _plans(2)
    with django_assert_num_queries(len(one)):
        body = client.get(url).json()
    assert body["count"] >= 3


def test_api_schema_documents_the_workbench(client_for, viewer):
    client = client_for(viewer)
    schema = client.get("/api/schema/").content.decode()
    docs = client.get("/api/docs/")
    for path in (
        "/api/rule-types/",
        "/api/plans/{slug}/versions/diff/",
        "/api/plans/{slug}/entities/{entity_name}/preview/",
        "/api/lookups/{uuid}/csv/",
        "/api/systems/{uuid}/test-connection/",
        "/api/plans/import/",
    ):
        assert f"{path}:" in schema, path
    assert docs.status_code == 200
