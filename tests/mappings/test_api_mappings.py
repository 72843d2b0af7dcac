"""The workbench REST API: roles, services behind every write, errors naming the field."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mappings.models import EntityMapping, FieldMapping, LookupTable, Plan, RuleStep, System
from runs.engine.rules import REGISTRY
from tests.factories import (
    EntityMappingFactory,
    FieldMappingFactory,
    LookupTableFactory,
    MilestoneFactory,
    PlanFactory,
    RuleStepFactory,
    SystemFactory,
)
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401
from validation.models import AuditEvent

pytestmark = pytest.mark.django_db
JSON = "application/json"
SECRET = "api-Pa55-never-returned"


def _ids(plan: Plan) -> dict[str, str]:
    entity = plan.entities.get(name="accounts")
    field = entity.fields.get(target_column="name")
    return {"slug": plan.slug, "system": str(plan.source.uuid), "entity": str(entity.uuid),
            "field": str(field.uuid), "step": str(field.steps.first().uuid),
            "lookup": str(plan.lookups.get(name="us-states").uuid),
            "milestone": str(plan.milestones.first().pk)}


def _send(client, method: str, url: str, body: dict | None = None):
    return getattr(client, method)(url, body or {}, content_type=JSON)


READS = ["/api/systems/", "/api/systems/{system}/", "/api/systems/{system}/schema/",
         "/api/plans/", "/api/plans/{slug}/", "/api/plans/{slug}/versions/",
         "/api/plans/{slug}/yaml/", "/api/entities/?plan={slug}", "/api/entities/{entity}/",
         "/api/field-mappings/?entity={entity}", "/api/field-mappings/{field}/",
         "/api/rule-steps/?field={field}", "/api/rule-steps/{step}/", "/api/rule-types/",
         "/api/rule-types/value_map/", "/api/lookups/?plan={slug}", "/api/lookups/{lookup}/",
         "/api/lookups/{lookup}/entries/", "/api/lookups/{lookup}/csv/",
         "/api/milestones/?plan={slug}", "/api/milestones/{milestone}/"]

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
    ("post", "/api/entities/", {"plan": "{slug}", "source_table": "customers",
                                "target_table": "accounts"}),
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
    ("post", "/api/milestones/", {"plan": "{slug}", "phase": "x", "start": "2026-01-01",
                                  "end": "2026-01-02"}),
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
    return tuple(model.objects.count() for model in (EntityMapping, FieldMapping, RuleStep,
                                                     LookupTable, System, Plan))


@pytest.mark.parametrize("role", ["viewer", "approver", "operator"])
def test_api_every_write_refused_without_edit_rights(request, client_for, demo_plan, role):
    ids = _ids(demo_plan)
    client = client_for(request.getfixturevalue(role))
    before = _counts()
    codes = {f"{method} {url}": _send(client, method, url.format(**ids),
                                      _fill(body, ids)).status_code
             for method, url, body in WRITES}
    assert {call: code for call, code in codes.items() if code != 403} == {}
    assert _counts() == before


def test_api_analyst_passes_the_role_check_on_every_write(client_for, analyst, demo_plan):
    ids = _ids(demo_plan)
    client = client_for(analyst)
    codes = {f"{method} {url}": _send(client, method, url.format(**ids),
                                      _fill(body, ids)).status_code
             for method, url, body in WRITES}
    assert {call: code for call, code in codes.items() if code == 403} == {}


def test_api_anonymous_gets_nothing(client, demo_plan):
    assert client.get("/api/rule-types/").status_code in (401, 403)
    assert client.get(f"/api/plans/{demo_plan.slug}/yaml/").status_code in (401, 403)


# --------------------------------------------------------------------------- systems


def test_api_system_crud_goes_through_the_audited_service(client_for, analyst):
    client = client_for(analyst)
    created = _send(client, "post", "/api/systems/", {
        "name": "wh", "kind": "postgresql", "host": "wh", "database": "dw", "secret": SECRET})
    url = f"/api/systems/{created.json()['uuid']}/"
    patched = _send(client, "patch", url, {"description": "warehouse"})
    deleted = client.delete(url)
    actions = list(AuditEvent.objects.filter(object_repr="wh").order_by("id")
                   .values_list("action", flat=True))
    assert (created.status_code, patched.status_code, deleted.status_code) == (201, 200, 204)
    assert actions == ["create", "update", "delete"]


def test_api_system_refuses_incomplete_postgresql(client_for, analyst):
    response = _send(client_for(analyst), "post", "/api/systems/",
                     {"name": "wh", "kind": "postgresql", "database": "dw"})
    assert response.status_code == 400
    assert response.json()["field"] == "host"


def test_api_system_duplicate_name_names_the_field(client_for, analyst):
    SystemFactory(name="wh")
    response = _send(client_for(analyst), "post", "/api/systems/",
                     {"name": "wh", "kind": "sqlite",
                      "path": f"{settings.MP_SYSTEMS_DIR}/wh.db"})
    assert response.status_code == 400
    assert response.json()["field"] == "name"


def test_api_system_delete_in_use_names_the_plans(client_for, analyst, demo_plan):
    response = client_for(analyst).delete(f"/api/systems/{demo_plan.source.uuid}/")
    assert response.status_code == 400
    assert response.json()["field"] == "plans"
    assert demo_plan.name in response.json()["detail"]
    assert System.objects.filter(pk=demo_plan.source.pk).exists()


def test_api_system_secret_never_in_any_response(client_for, analyst, demo_plan):
    client = client_for(analyst)
    system = demo_plan.source
    bodies = [_send(client, "patch", f"/api/systems/{system.uuid}/", {"secret": SECRET})]
    bodies += [client.get(url) for url in (
        "/api/systems/", f"/api/systems/{system.uuid}/", f"/api/systems/{system.uuid}/schema/",
        f"/api/plans/{demo_plan.slug}/", f"/api/plans/{demo_plan.slug}/yaml/")]
    bodies.append(client.post(f"/api/systems/{system.uuid}/test-connection/"))
    system.refresh_from_db()
    text = "".join(r.content.decode() for r in bodies)
    assert [r.status_code for r in bodies] == [200] * 7
    assert SECRET not in text and system.secret_ciphertext not in text
    assert bodies[0].json()["has_secret"] is True


def test_api_system_test_connection_lists_tables_for_an_analyst(client_for, analyst,
                                                                demo_plan):
    response = client_for(analyst).post(f"/api/systems/{demo_plan.source.uuid}/test-connection/")
    body = response.json()
    assert response.status_code == 200
    assert body["ok"] is True and body["message"].startswith("SQLite")
    assert "customers" in [t["name"] for t in body["tables"]]


def test_api_system_test_connection_reports_failure(client_for, analyst):
    system = SystemFactory(path="/nonexistent/dir/none.sqlite3")
    body = client_for(analyst).post(f"/api/systems/{system.uuid}/test-connection/").json()
    assert body["ok"] is False and body["tables"] == []


def test_api_system_schema_describes_columns(client_for, viewer, demo_plan):
    tables = client_for(viewer).get(f"/api/systems/{demo_plan.target.uuid}/schema/").json()
    accounts = next(t for t in tables if t["name"] == "accounts")
    name = next(c for c in accounts["columns"] if c["name"] == "name")
    assert accounts["primary_key"] == ["id"]
    assert (name["max_length"], name["nullable"]) == (80, False)
    assert {"data_type", "has_default", "primary_key"} <= set(name)
    assert isinstance(accounts["row_estimate"], int)


# --------------------------------------------------------------------------- plans


def test_api_plan_create_status_and_edit_back_to_draft(client_for, analyst, approver,
                                                       demo_systems):
    client = client_for(analyst)
    created = _send(client, "post", "/api/plans/", {
        "name": "Wave 2", "source": demo_systems[0].name, "target": demo_systems[1].name})
    slug = created.json()["slug"]
    review = _send(client, "post", f"/api/plans/{slug}/status/", {"status": "in_review"})
    signed = _send(client_for(approver), "post", f"/api/plans/{slug}/status/",
                   {"status": "signed_off"})
    edited = _send(client_for(analyst), "patch", f"/api/plans/{slug}/", {"batch_size": 500})
    assert created.status_code == 201 and slug == "wave-2"
    assert created.json()["owner"] == analyst.username
    assert review.json()["status"] == "in_review"
    assert signed.status_code == 403  # signing off is the sign-off service's, not the status's
    assert (edited.json()["status"], edited.json()["batch_size"]) == ("draft", 500)


def test_api_plan_refuses_a_target_only_system_as_source(client_for, analyst, demo_systems):
    response = _send(client_for(analyst), "post", "/api/plans/", {
        "name": "Wrong way", "source": demo_systems[1].name, "target": demo_systems[0].name})
    assert response.status_code == 400
    assert response.json()["field"] == "source"


def test_api_plan_sign_off_refused_for_an_analyst(client_for, analyst, demo_plan):
    client = client_for(analyst)
    _send(client, "post", f"/api/plans/{demo_plan.slug}/status/", {"status": "in_review"})
    response = _send(client, "post", f"/api/plans/{demo_plan.slug}/status/",
                     {"status": "signed_off"})
    assert response.status_code == 400
    assert "only through the sign-off" in response.json()["detail"]


def test_api_plan_that_never_ran_can_be_deleted(client_for, analyst, demo_plan):
    response = client_for(analyst).delete(f"/api/plans/{demo_plan.slug}/")
    assert response.status_code == 204
    assert not Plan.objects.filter(pk=demo_plan.pk).exists()


# --------------------------------------------------------------------------- entities, fields


def test_api_entity_crud_defaults_keys_and_records_history(client_for, analyst, demo_plan):
    client = client_for(analyst)
    created = _send(client, "post", "/api/entities/", {
        "plan": demo_plan.slug, "name": "accounts-2", "source_table": "customers",
        "target_table": "accounts"})
    url = f"/api/entities/{created.json()['uuid']}/"
    patched = _send(client, "patch", url, {"notes": "second wave"})
    entity = EntityMapping.objects.get(name="accounts-2")
    deleted = client.delete(url)
    history = list(EntityMapping.history.filter(id=entity.pk).order_by("history_id")
                   .values_list("history_type", "history_user__username"))
    assert (created.status_code, patched.status_code, deleted.status_code) == (201, 200, 204)
    assert (created.json()["source_key"], created.json()["target_key"]) == (["Customer_ID"],
                                                                            "id")
    assert patched.json()["notes"] == "second wave"
    assert history == [("+", "ana"), ("~", "ana"), ("-", "ana")]


def test_api_entity_unknown_table_names_the_field(client_for, analyst, demo_plan):
    response = _send(client_for(analyst), "post", "/api/entities/", {
        "plan": demo_plan.slug, "source_table": "customers", "target_table": "nope"})
    assert response.status_code == 400
    assert response.json()["field"] == "target_table"


def test_api_entity_duplicate_name_names_the_field(client_for, analyst, demo_plan):
    response = _send(client_for(analyst), "post", "/api/entities/", {
        "plan": demo_plan.slug, "name": "accounts", "source_table": "customers",
        "target_table": "accounts"})
    assert response.status_code == 400
    assert response.json()["field"] == "name"


def test_api_entity_list_filters_by_plan(client_for, viewer, demo_plan):
    EntityMappingFactory()
    body = client_for(viewer).get(f"/api/entities/?plan={demo_plan.slug}").json()
    assert [e["name"] for e in body["results"]] == ["accounts", "contacts", "orders"]


def test_api_field_duplicate_target_column_names_the_field(client_for, analyst, demo_plan):
    entity = demo_plan.entities.get(name="accounts")
    response = _send(client_for(analyst), "post", "/api/field-mappings/", {
        "entity": str(entity.uuid), "target_column": "name", "source_columns": ["Cust_Name"]})
    assert response.status_code == 400
    assert response.json()["field"] == "target_column"


def test_api_field_unmap_and_remap_with_concat(client_for, analyst, demo_plan):
    client = client_for(analyst)
    entity = demo_plan.entities.get(name="accounts")
    phone = entity.fields.get(target_column="phone")
    deleted = client.delete(f"/api/field-mappings/{phone.uuid}/")
    created = _send(client, "post", "/api/field-mappings/", {
        "entity": str(entity.uuid), "target_column": "phone",
        "source_columns": ["Phone_Number", "Email_Address"]})
    patched = _send(client, "patch", f"/api/field-mappings/{created.json()['uuid']}/",
                    {"required": True})
    assert (deleted.status_code, created.status_code, patched.status_code) == (204, 201, 200)
    assert [s["rule"] for s in created.json()["steps"]] == ["concat"]
    assert patched.json()["required"] is True


def test_api_field_unknown_source_column_names_the_field(client_for, analyst, demo_plan):
    field = demo_plan.entities.get(name="accounts").fields.get(target_column="phone")
    response = _send(client_for(analyst), "patch", f"/api/field-mappings/{field.uuid}/",
                     {"source_columns": ["Nope"]})
    assert response.status_code == 400
    assert response.json()["field"] == "source_columns"


def test_api_field_target_column_cannot_change(client_for, analyst, demo_plan):
    field = demo_plan.entities.get(name="accounts").fields.get(target_column="phone")
    response = _send(client_for(analyst), "patch", f"/api/field-mappings/{field.uuid}/",
                     {"target_column": "email"})
    assert response.status_code == 400
    assert response.json()["field"] == "target_column"


def test_api_field_filter_rejects_a_non_uuid(client_for, viewer, demo_plan):
    response = client_for(viewer).get("/api/field-mappings/?entity=accounts")
    assert response.status_code == 400
    assert response.json()["field"] == "entity"


# --------------------------------------------------------------------------- rule steps


def _name_field(plan: Plan) -> FieldMapping:
    return plan.entities.get(name="accounts").fields.get(target_column="name")


def test_api_step_unknown_rule_type_names_the_field(client_for, analyst, demo_plan):
    response = _send(client_for(analyst), "post", "/api/rule-steps/",
                     {"field": str(_name_field(demo_plan).uuid), "rule": "shout"})
    assert response.status_code == 400
    assert response.json()["field"] == "rule"


def test_api_step_bad_regex_names_the_parameter(client_for, analyst, demo_plan):
    response = _send(client_for(analyst), "post", "/api/rule-steps/", {
        "field": str(_name_field(demo_plan).uuid), "rule": "regex_validate",
        "params": {"pattern": "([a-z"}})
    assert response.status_code == 400
    assert response.json()["field"] == "pattern"
    assert "regular expression" in response.json()["detail"]


def test_api_step_unknown_lookup_names_the_parameter(client_for, analyst, demo_plan):
    response = _send(client_for(analyst), "post", "/api/rule-steps/", {
        "field": str(_name_field(demo_plan).uuid), "rule": "value_map",
        "params": {"lookup": "no-such-table"}})
    assert response.status_code == 400
    assert response.json()["field"] == "lookup"


def test_api_step_add_update_move_delete(client_for, analyst, demo_plan):
    client = client_for(analyst)
    field = _name_field(demo_plan)
    added = _send(client, "post", "/api/rule-steps/", {"field": str(field.uuid),
                                                        "rule": "truncate",
                                                        "params": {"length": 60}})
    url = f"/api/rule-steps/{added.json()['uuid']}/"
    updated = _send(client, "patch", url, {"params": {"length": "50"}})
    moved = _send(client, "post", f"{url}move/", {"direction": "up"})
    order = list(field.steps.values_list("rule", flat=True))
    deleted = client.delete(url)
    assert (added.status_code, updated.status_code, moved.status_code,
            deleted.status_code) == (201, 200, 200, 204)
    assert updated.json()["params"] == {"length": 50, "on_overflow": "truncate"}
    assert moved.json()["position"] == 2
    assert order == ["trim", "title", "truncate", "truncate"]
    assert list(field.steps.values_list("position", flat=True)) == [0, 1, 2]


def test_api_step_bad_int_param_on_update_names_it(client_for, analyst, demo_plan):
    step = _name_field(demo_plan).steps.get(rule="truncate")
    response = _send(client_for(analyst), "patch", f"/api/rule-steps/{step.uuid}/",
                     {"params": {"length": 0}})
    assert response.status_code == 400
    assert response.json()["field"] == "length"


def test_api_step_move_needs_a_direction(client_for, analyst, demo_plan):
    step = _name_field(demo_plan).steps.first()
    response = _send(client_for(analyst), "post", f"/api/rule-steps/{step.uuid}/move/",
                     {"direction": "sideways"})
    assert response.status_code == 400
    assert "direction" in response.json()


def test_api_step_edit_returns_a_signed_off_plan_to_draft(client_for, analyst, demo_plan):
    Plan.objects.filter(pk=demo_plan.pk).update(status="signed_off")
    _send(client_for(analyst), "post", "/api/rule-steps/",
          {"field": str(_name_field(demo_plan).uuid), "rule": "upper"})
    demo_plan.refresh_from_db()
    assert demo_plan.status == "draft"


def test_api_rule_types_list_every_registry_rule(client_for, viewer):
    body = client_for(viewer).get("/api/rule-types/").json()
    value_map = next(r for r in body if r["name"] == "value_map")
    on_missing = next(p for p in value_map["params"] if p["name"] == "on_missing")
    assert [r["name"] for r in body] == list(REGISTRY)
    assert value_map["null_handling"] == REGISTRY["value_map"].null_handling
    assert on_missing == {"name": "on_missing", "type": "choice", "required": False,
                          "default": "default", "choices": ["default", "fail", "keep"],
                          "help": REGISTRY["value_map"].params[1].help, "min_value": None,
                          "max_value": None}


def test_api_rule_type_unknown_is_404(client_for, viewer):
    assert client_for(viewer).get("/api/rule-types/shout/").status_code == 404


# --------------------------------------------------------------------------- lookups, milestones


def test_api_lookup_crud_and_entries(client_for, analyst, demo_plan):
    client = client_for(analyst)
    created = _send(client, "post", "/api/lookups/", {"plan": demo_plan.slug, "name": "tiers",
                                                       "default_value": "bronze"})
    url = f"/api/lookups/{created.json()['uuid']}/"
    added = [_send(client, "post", f"{url}entries/", {"key": k, "value": v})
             for k, v in (("G", "gold"), ("S", "silver"), ("G", "GOLD"))]
    removed = client.delete(f"{url}entries/?key=S")
    entries = client.get(f"{url}entries/").json()
    renamed = _send(client, "patch", url, {"description": "Customer tiers"})
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
    response = _send(client_for(analyst), "post", "/api/lookups/",
                     {"plan": demo_plan.slug, "name": "us-states"})
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
    created = _send(client, "post", "/api/milestones/", {
        "plan": demo_plan.slug, "phase": "Hypercare", "start": "2026-05-01",
        "end": "2026-05-15"})
    url = f"/api/milestones/{created.json()['id']}/"
    backwards = _send(client, "patch", url, {"end": "2026-04-01"})
    deleted = client.delete(url)
    assert (created.status_code, created.json()["position"]) == (201, 6)
    assert backwards.status_code == 400 and backwards.json()["field"] == "end"
    assert deleted.status_code == 204


# --------------------------------------------------------------------------- preview, versions


def test_api_preview_marks_a_failing_cell(client_for, viewer, demo_plan):
    response = _send(client_for(viewer), "post",
                     f"/api/plans/{demo_plan.slug}/entities/accounts/preview/",
                     {"rows": 100, "sample": "first"})
    body = response.json()
    failed = [r for r in body["rows"] if r["status"] == "failed"]
    assert response.status_code == 200 and body["error"] is None
    assert len(body["rows"]) == 100 and body["failed"] == len(failed) > 0
    assert any(cell["error"] for cell in failed[0]["result"])
    assert body["source_columns"][0] == "Customer_ID" and "name" in body["target_columns"]


def test_api_preview_validates_its_body(client_for, viewer, demo_plan):
    client = client_for(viewer)
    url = f"/api/plans/{demo_plan.slug}/entities/accounts/preview/"
    bad = _send(client, "post", url, {"rows": 0, "sample": "middle"})
    missing = _send(client, "post", f"/api/plans/{demo_plan.slug}/entities/nope/preview/")
    assert bad.status_code == 400 and set(bad.json()) == {"rows", "sample"}
    assert missing.status_code == 404


def test_api_version_create_diff_revert_round_trip(client_for, analyst, demo_plan):
    client = client_for(analyst)
    base = f"/api/plans/{demo_plan.slug}/versions/"
    first = _send(client, "post", base, {"note": "baseline"})
    again = _send(client, "post", base, {"note": "unchanged"})
    _send(client, "post", "/api/rule-steps/", {"field": str(_name_field(demo_plan).uuid),
                                                "rule": "upper"})
    second = _send(client, "post", base, {"note": "upper"})
    diff = client.get(f"{base}diff/?a=1&b=2").json()
    reverted = client.post(f"{base}1/revert/")
    listing = client.get(base).json()
    assert (first.status_code, again.status_code, second.status_code) == (201, 200, 201)
    assert diff["changes"][0]["what"] == "field accounts.name"
    assert "upper" in diff["changes"][0]["details"][0]
    assert reverted.status_code == 200
    assert list(_name_field(demo_plan).steps.values_list("rule", flat=True)) == [
        "trim", "title", "truncate"]
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
        f"name: {demo_plan.name}", "name: CRM copy", 1)
    created = client.post("/api/plans/import/", copy, content_type="text/yaml")
    again = client.get("/api/plans/crm-copy/yaml/").content.decode()
    replaced = _send(client, "post", "/api/plans/import/", {"yaml": text, "replace": True})
    assert exported["Content-Type"].startswith("text/yaml")
    assert created.status_code == 201 and created.json()["slug"] == "crm-copy"
    assert again == copy
    assert replaced.status_code == 201 and replaced.json()["slug"] == demo_plan.slug
    assert client.get(f"/api/plans/{demo_plan.slug}/yaml/").content.decode() == text


def test_api_yaml_import_errors_give_line_and_column(client_for, analyst, demo_plan):
    client = client_for(analyst)
    text = client.get(f"/api/plans/{demo_plan.slug}/yaml/").content.decode()
    clash = client.post("/api/plans/import/", text, content_type="text/yaml")
    broken = _send(client, "post", "/api/plans/import/", {"yaml": "plan: [unclosed"})
    assert clash.status_code == 400
    assert clash.json()["field"] == "plan.slug" and clash.json()["line"] > 1
    assert {"line", "column"} <= set(clash.json())
    assert broken.status_code == 400 and "line 1" in broken.json()["detail"]


def test_api_yaml_import_as_file(client_for, analyst, demo_plan):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(analyst)
    text = client.get(f"/api/plans/{demo_plan.slug}/yaml/").content.decode()
    upload = SimpleUploadedFile("plan.yaml", text.replace(
        f"slug: {demo_plan.slug}", "slug: from-file", 1).replace(
        f"name: {demo_plan.name}", "name: From file", 1).encode())
    response = client.post("/api/plans/import/", {"file": upload})
    assert response.status_code == 201 and response.json()["slug"] == "from-file"


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


LISTS = ["/api/systems/", "/api/plans/", "/api/entities/", "/api/field-mappings/",
         "/api/rule-steps/", "/api/lookups/", "/api/milestones/"]


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
    for path in ("/api/rule-types/", "/api/plans/{slug}/versions/diff/",
                 "/api/plans/{slug}/entities/{entity_name}/preview/", "/api/lookups/{uuid}/csv/",
                 "/api/systems/{uuid}/test-connection/", "/api/plans/import/"):
        assert f"{path}:" in schema, path
    assert docs.status_code == 200
