"""Reads for systems and plans, with their related rows fetched up front."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from .models import EntityMapping, FieldMapping, Plan, System


def plan_list() -> QuerySet[Plan]:
    """Plans with source/target and entity counts: a constant number of queries."""
    return (
        Plan.objects.select_related("source", "target", "owner")
        .annotate(entity_count=Count("entities", distinct=True))
        .order_by("name")
    )


def plan_detail(*, slug: str) -> Plan:
    """One plan with entities, fields and rule steps prefetched; raises Plan.DoesNotExist."""
    fields = FieldMapping.objects.prefetch_related("steps").order_by("position", "id")
    entities = EntityMapping.objects.prefetch_related(Prefetch("fields", queryset=fields))
    return (
        Plan.objects.select_related("source", "target", "owner")
        .prefetch_related(
            Prefetch("entities", queryset=entities),
            "milestones",
            "lookups__entries",
            "versions",
        )
        .get(slug=slug)
    )


def system_list() -> QuerySet[System]:
    """Systems with how many plans use them."""
    return System.objects.annotate(
        source_plans=Count("plans_as_source", distinct=True),
        target_plans=Count("plans_as_target", distinct=True),
    ).order_by("name")
