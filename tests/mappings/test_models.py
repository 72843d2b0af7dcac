"""Model invariants enforced by the database."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from mappings.models import PlanVersion
from tests.factories import (
    EntityMappingFactory,
    FieldMappingFactory,
    LookupEntryFactory,
    MilestoneFactory,
    PlanFactory,
    SystemFactory,
)

pytestmark = pytest.mark.django_db


def _violates(factory, **kwargs) -> bool:
    try:
        with transaction.atomic():
            factory(**kwargs)
    except IntegrityError:
        return True
    return False


def test_plan_batch_size_must_be_positive():
    assert _violates(PlanFactory, batch_size=0)


def test_plan_failure_threshold_must_be_a_percentage():
    assert _violates(PlanFactory, failure_threshold_pct=101)
    assert not _violates(PlanFactory, failure_threshold_pct=100)


def test_plan_parallelism_has_bounds():
    assert _violates(PlanFactory, parallelism=0)


def test_system_postgresql_needs_host_and_database():
    assert _violates(SystemFactory, kind="postgresql", host="", database="", path="")
    assert not _violates(SystemFactory, kind="postgresql", host="db", database="crm", path="")


def test_system_sqlite_needs_path():
    assert _violates(SystemFactory, kind="sqlite", path="")


def test_system_port_range():
    assert _violates(SystemFactory, kind="postgresql", host="h", database="d", port=70000)


def test_milestone_end_not_before_start():
    assert _violates(MilestoneFactory, start=dt.date(2026, 2, 1), end=dt.date(2026, 1, 1))


def test_entity_name_unique_in_plan():
    entity = EntityMappingFactory()
    assert _violates(EntityMappingFactory, plan=entity.plan, name=entity.name)
    assert not _violates(EntityMappingFactory, name=entity.name)


def test_entity_upsert_needs_external_id():
    assert _violates(EntityMappingFactory, load_mode="upsert", external_id="")
    assert not _violates(EntityMappingFactory, load_mode="upsert", external_id="account_number")


def test_field_target_unique_in_entity():
    field = FieldMappingFactory()
    assert _violates(FieldMappingFactory, entity=field.entity, target_column=field.target_column)


def test_lookup_key_unique_in_table():
    entry = LookupEntryFactory()
    assert _violates(LookupEntryFactory, table=entry.table, key=entry.key)


def test_plan_version_is_immutable():
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="x")
    version.note = "changed"
    with pytest.raises(ValidationError):
        version.save()
    with pytest.raises(ValidationError):
        version.delete()
    assert PlanVersion.objects.get(pk=version.pk).note == ""


def test_plan_version_number_unique_per_plan():
    plan = PlanFactory()
    PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="y")


def test_plan_edits_are_recorded_in_history(analyst):
    plan = PlanFactory()
    plan.batch_size = 500
    plan._history_user = analyst
    plan.save()
    latest = plan.history.first()
    assert (latest.batch_size, latest.history_user, latest.history_type) == (500, analyst, "~")
    assert plan.history.count() == 2
