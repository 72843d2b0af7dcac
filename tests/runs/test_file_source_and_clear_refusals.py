"""Issue 17.11: runs from a `file` system work; an entity with no fields is refused clearly;
run control messages are spelled right."""

from __future__ import annotations

import sqlite3

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mappings.models import System
from mappings.services_uploads import file_upload_receive, file_upload_stage
from migration_planner.lib.errors import ApplicationError
from runs.enums import RunStatus
from runs.services import run_cancel, run_create
from tests.factories import EntityMappingFactory, FieldMappingFactory, PlanFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def file_plan(tmp_path, settings, analyst):
    settings.MP_SYSTEMS_DIR = tmp_path
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = str(tmp_path / "media")
    source = System.objects.create(name="csv export", kind="file", role="source")
    upload = SimpleUploadedFile("people.csv", b"id,name\n1,Ada\n2,Grace\n3,\n")
    record = file_upload_receive(system=source, user=analyst, upload=upload, table="people")
    file_upload_stage(upload_id=record.pk)  # a no-op when the (eager) task already staged it
    record.refresh_from_db()
    assert record.status == "staged", record.error
    source.refresh_from_db()
    target_path = tmp_path / "target.sqlite3"
    with sqlite3.connect(target_path) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    target = System.objects.create(
        name="target", kind="sqlite", path=str(target_path), role="target"
    )
    plan = PlanFactory(source=source, target=target, failure_threshold_pct=50)
    entity = EntityMappingFactory(
        plan=plan, name="people", source_table="people", target_table="people", source_key=["id"]
    )
    FieldMappingFactory(entity=entity, target_column="id", source_columns=["id"])
    FieldMappingFactory(entity=entity, target_column="name", source_columns=["name"])
    return plan


def test_a_load_run_from_a_file_system_works(eager_celery, file_plan):
    run = run_create(plan=file_plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.extracted, run.loaded, run.failed) == (3, 2, 1)


def test_an_entity_without_fields_is_refused_by_name(eager_celery, file_plan):
    EntityMappingFactory(
        plan=file_plan,
        name="empty-one",
        source_table="people",
        target_table="people",
        source_key=["id"],
    )
    with pytest.raises(ApplicationError, match="Entity “empty-one” maps no field yet"):
        run_create(plan=file_plan, user=None, mode="dry_run")


def test_cancel_messages_are_spelled_right(eager_celery, file_plan):
    run = run_create(plan=file_plan, user=None, mode="dry_run")
    run.refresh_from_db()
    with pytest.raises(ApplicationError) as info:
        run_cancel(run=run, user=None)
    assert "cannot be cancelled" in info.value.message and "canceld" not in info.value.message
