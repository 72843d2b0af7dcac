"""factory_boy factories for the domain models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import factory
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User

from mappings.models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    RuleStep,
    System,
)

PASSWORD = "pw-for-tests-1"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set(Group.objects.filter(name__in=extracted))


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = System

    name = factory.Sequence(lambda n: f"system-{n}")
    kind = "sqlite"
    path = factory.Sequence(
        lambda n: str(Path(django_settings.MP_SYSTEMS_DIR) / f"mp-test-{n}.sqlite3")
    )


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    name = factory.Sequence(lambda n: f"Plan {n}")
    slug = factory.Sequence(lambda n: f"plan-{n}")
    source = factory.SubFactory(SystemFactory)
    target = factory.SubFactory(SystemFactory)


class MilestoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Milestone

    plan = factory.SubFactory(PlanFactory)
    phase = "Planning & Analysis"
    start = dt.date(2026, 1, 5)
    end = dt.date(2026, 1, 19)


class EntityMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EntityMapping

    plan = factory.SubFactory(PlanFactory)
    name = factory.Sequence(lambda n: f"entity-{n}")
    source_table = "customers"
    target_table = "accounts"
    source_key = ["Customer_ID"]


class FieldMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FieldMapping

    entity = factory.SubFactory(EntityMappingFactory)
    target_column = factory.Sequence(lambda n: f"col_{n}")
    source_columns = ["Cust_Name"]


class RuleStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RuleStep

    field = factory.SubFactory(FieldMappingFactory)
    rule = "trim"


class LookupTableFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LookupTable

    plan = factory.SubFactory(PlanFactory)
    name = factory.Sequence(lambda n: f"lookup-{n}")


class LookupEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LookupEntry

    table = factory.SubFactory(LookupTableFactory)
    key = factory.Sequence(lambda n: f"k{n}")
    value = "v"
