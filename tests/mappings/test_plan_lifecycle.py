"""Plan lifecycle: YAML import checked against the live schemas, clone, archive, delete,
unique names — services, pages and API."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mappings import services_edit as edit
from mappings.forms import PlanForm
from mappings.models import Plan, PlanVersion
from mappings.services_plans import plan_archive, plan_clone, plan_delete
from mappings.yaml_io import plan_export_yaml, plan_import_check, plan_import_yaml
from migration_planner.lib.errors import ApplicationError
from runs.models import Run
from runs.services.launch import run_create
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401
from validation.models import AuditEvent

pytestmark = pytest.mark.django_db


def _copy_text(plan, *, slug="crm-copy", name="CRM copy") -> str:
    text = plan_export_yaml(plan=plan)
    return text.replace(f"slug: {plan.slug}", f"slug: {slug}", 1).replace(
        f"name: {plan.name}", f"name: {name}", 1
    )


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def _bad_table_text(plan) -> str:
    return _copy_text(plan).replace("target_table: accounts", "target_table: acounts", 1)


def test_import_refuses_an_unknown_table_with_line_and_column(demo_plan, analyst):
    text = _bad_table_text(demo_plan)
    with pytest.raises(ApplicationError) as err:
        plan_import_yaml(text=text, user=analyst)
    problems = err.value.extra["schema_problems"]
    assert problems[0]["line"] == _line_of(text, "target_table: acounts")
    assert problems[0]["message"] == "no table “acounts” in target system “New CRM (UAT)”"
    assert "not yet created" in err.value.message
    assert not Plan.objects.filter(slug="crm-copy").exists()


def test_import_names_unknown_columns_of_known_tables(demo_plan, analyst):
    text = _copy_text(demo_plan).replace("sources: [Cust_Name]", "sources: [Cust_Nme]", 1)
    check = plan_import_check(text=text)
    assert [p.message for p in check.problems] == [
        "no column “Cust_Nme” in source table “customers”"
    ]
    assert check.problems[0].path.endswith(".sources")
    assert check.counts["entities"] == 3 and not check.exists


def test_import_with_confirmation_accepts_a_schema_not_yet_created(demo_plan, analyst):
    plan = plan_import_yaml(
        text=_bad_table_text(demo_plan), user=analyst, allow_unknown_schema=True
    )
    assert plan.entities.filter(target_table="acounts").count() == 1


def test_api_import_refuses_unknown_tables_unless_confirmed(client_for, analyst, demo_plan):
    client = client_for(analyst)
    text = _bad_table_text(demo_plan)
    refused = client.post("/api/plans/import/", text, content_type="text/yaml")
    accepted = client.post(
        "/api/plans/import/?allow_unknown_schema=true", text, content_type="text/yaml"
    )
    assert refused.status_code == 400
    assert refused.json()["line"] == _line_of(text, "target_table: acounts")
    assert len(refused.json()["schema_problems"]) == 1
    assert accepted.status_code == 201


def test_plan_names_are_unique_ignoring_case(demo_plan, analyst):
    with pytest.raises(ApplicationError, match="already exists: plan names are unique"):
        edit.plan_create(
            user=analyst,
            data={
                "name": demo_plan.name.upper(),
                "source": demo_plan.source,
                "target": demo_plan.target,
            },
        )
    form = PlanForm(
        data={
            "name": demo_plan.name.lower(),
            "source": demo_plan.source.pk,
            "target": demo_plan.target.pk,
            "strategy": "big_bang",
            "batch_size": 10,
            "parallelism": 1,
            "failure_threshold_pct": 5,
        }
    )
    assert not form.is_valid()
    assert "A plan with this name already exists" in str(form.errors)


def test_import_refuses_a_second_plan_with_the_same_name(demo_plan, analyst):
    text = _copy_text(demo_plan, name=demo_plan.name)
    with pytest.raises(ApplicationError, match="plan names are unique") as err:
        plan_import_yaml(text=text, user=analyst)
    assert err.value.field == "plan.name"


def test_clone_copies_everything_the_plan_says(demo_plan, analyst):
    field = demo_plan.entities.get(name="accounts").fields.get(target_column="name")
    field.notes = "Name max 80 chars"
    field.save()
    copy = plan_clone(plan=demo_plan, user=analyst, name="Rehearsal 2")
    original = (
        plan_export_yaml(plan=demo_plan)
        .replace(f"slug: {demo_plan.slug}", f"slug: {copy.slug}", 1)
        .replace(f"name: {demo_plan.name}", "name: Rehearsal 2", 1)
    )
    assert plan_export_yaml(plan=copy) == original
    assert "Name max 80 chars" in original
    assert copy.validation_rules.count() == demo_plan.validation_rules.count() > 0
    assert copy.uat_cases.count() == demo_plan.uat_cases.count() > 0
    assert copy.versions.count() == 0 and copy.status == "draft"
    assert AuditEvent.objects.filter(action="create", after__cloned_from=demo_plan.slug).exists()


def _run(plan, user) -> Run:
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    return Run.objects.create(plan=plan, version=version, target=plan.target, launched_by=user)


def test_delete_is_refused_while_runs_exist_and_archive_is_offered(demo_plan, analyst):
    _run(demo_plan, analyst)
    with pytest.raises(ApplicationError, match="has 1 run: a plan with runs cannot be deleted"):
        plan_delete(plan=demo_plan, user=analyst)
    plan_archive(plan=demo_plan, user=analyst)
    assert Plan.objects.filter(pk=demo_plan.pk, archived_at__isnull=False).exists()


def test_archived_plan_refuses_new_runs_and_leaves_the_list(client_for, analyst, demo_plan):
    plan_archive(plan=demo_plan, user=analyst)
    with pytest.raises(ApplicationError, match="is archived: restore it"):
        run_create(plan=demo_plan, user=analyst)
    body = client_for(analyst).get("/plans/").content.decode()
    assert demo_plan.name not in body.split("Archived plans")[0]
    assert "Archived plans (1)" in body
    plan_archive(plan=demo_plan, user=analyst, archived=False)
    assert Plan.objects.get(pk=demo_plan.pk).archived_at is None


def test_delete_without_runs_removes_the_plan_and_audits(demo_plan, analyst):
    slug = demo_plan.slug
    plan_delete(plan=demo_plan, user=analyst)
    assert not Plan.objects.filter(slug=slug).exists()
    assert AuditEvent.objects.filter(action="delete", object_repr=f"plan {slug}").exists()


def test_api_delete_clone_archive(client_for, analyst, demo_plan):
    client = client_for(analyst)
    clone = client.post(
        f"/api/plans/{demo_plan.slug}/clone/", {"name": "API copy"}, content_type="application/json"
    )
    _run(demo_plan, analyst)
    refused = client.delete(f"/api/plans/{demo_plan.slug}/")
    archived = client.post(
        f"/api/plans/{demo_plan.slug}/archive/", {"archived": True}, content_type="application/json"
    )
    active = client.get("/api/plans/?archived=false").json()
    deleted = client.delete(f"/api/plans/{clone.json()['slug']}/")
    assert clone.status_code == 201
    assert refused.status_code == 400 and "Archive it instead" in refused.json()["detail"]
    assert archived.status_code == 200 and archived.json()["archived_at"]
    rows = active["results"] if isinstance(active, dict) else active
    assert [p["slug"] for p in rows] == ["api-copy"]
    assert deleted.status_code == 204


def test_import_page_validate_shows_line_column_and_schema_problems(client_for, analyst, demo_plan):
    client = client_for(analyst)
    broken = client.post("/plans/import/", {"yaml": "format: [x", "action": "validate"})
    text = _bad_table_text(demo_plan)
    checked = client.post("/plans/import/", {"yaml": text, "action": "validate"})
    refused = client.post("/plans/import/", {"yaml": text, "action": "import"})
    created_by_refused = Plan.objects.filter(slug="crm-copy").exists()
    upload = SimpleUploadedFile("plan.yaml", text.encode())
    imported = client.post(
        "/plans/import/", {"file": upload, "action": "import", "allow_unknown_schema": "on"}
    )
    line = _line_of(text, "target_table: acounts")
    assert "line 1, column 11" in broken.content.decode()
    assert f"line {line}, column" in checked.content.decode()
    assert "1 schema problem:" in checked.content.decode()
    assert not created_by_refused
    assert refused.status_code == 200 and "not yet created" in refused.content.decode()
    assert imported.status_code == 302 and Plan.objects.filter(slug="crm-copy").exists()


def test_delete_page_explains_why_a_plan_with_runs_stays(client_for, analyst, demo_plan):
    _run(demo_plan, analyst)
    client = client_for(analyst)
    page = client.get(f"/plans/{demo_plan.slug}/delete/").content.decode()
    post = client.post(f"/plans/{demo_plan.slug}/delete/")
    assert "This plan has 1 run: it cannot be deleted" in page
    assert "Archive the plan" in page
    assert post.status_code == 302 and Plan.objects.filter(pk=demo_plan.pk).exists()


@pytest.mark.parametrize("url", ["/plans/import/", "/plans/{slug}/clone/", "/plans/{slug}/delete/"])
def test_viewer_cannot_use_lifecycle_pages(client_for, viewer, demo_plan, url):
    assert client_for(viewer).get(url.format(slug=demo_plan.slug)).status_code == 403
