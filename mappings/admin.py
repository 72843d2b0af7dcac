"""Admin for systems and mappings: view only. Systems and plans change through the app's pages
and API, whose services audit the change, void sign-offs and refuse what a role may not do."""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from migration_planner.lib.admin import EvidenceAdmin

from .models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    PlanVersion,
    RuleStep,
    System,
)


class ServiceOnlyAdmin(EvidenceAdmin, SimpleHistoryAdmin):
    """A mapping model the admin may list, view and see the history of, never write."""


@admin.register(System)
class SystemAdmin(EvidenceAdmin):
    list_display = ["name", "kind", "environment", "role", "has_secret"]
    list_filter = ["kind", "environment", "role"]
    search_fields = ["name"]


class MilestoneInline(admin.TabularInline):
    model = Milestone
    extra = 0


class EntityInline(admin.TabularInline):
    model = EntityMapping
    extra = 0
    fields = ["name", "source_table", "target_table", "load_mode", "load_order"]
    show_change_link = True


@admin.register(Plan)
class PlanAdmin(ServiceOnlyAdmin):
    list_display = ["name", "source", "target", "strategy", "status", "updated_at"]
    list_filter = ["status", "strategy"]
    list_select_related = ["source", "target"]
    inlines = [MilestoneInline, EntityInline]


class FieldInline(admin.TabularInline):
    model = FieldMapping
    extra = 0
    fields = ["position", "target_column", "source_columns", "default_value", "required"]
    show_change_link = True


@admin.register(EntityMapping)
class EntityMappingAdmin(ServiceOnlyAdmin):
    list_display = ["name", "plan", "source_table", "target_table", "load_mode", "load_order"]
    list_select_related = ["plan"]
    inlines = [FieldInline]


class RuleStepInline(admin.TabularInline):
    model = RuleStep
    extra = 0


@admin.register(FieldMapping)
class FieldMappingAdmin(ServiceOnlyAdmin):
    list_display = ["target_column", "entity", "position", "required"]
    list_select_related = ["entity"]
    inlines = [RuleStepInline]


@admin.register(RuleStep)
class RuleStepAdmin(ServiceOnlyAdmin):
    list_display = ["field", "position", "rule"]
    list_select_related = ["field"]


class LookupEntryInline(admin.TabularInline):
    model = LookupEntry
    extra = 0


@admin.register(LookupTable)
class LookupTableAdmin(ServiceOnlyAdmin):
    list_display = ["name", "plan", "default_value"]
    list_select_related = ["plan"]
    inlines = [LookupEntryInline]


@admin.register(PlanVersion)
class PlanVersionAdmin(EvidenceAdmin):
    """A version is what was signed off: view only."""

    list_display = ["plan", "number", "content_hash", "created_by", "created_at"]
    list_select_related = ["plan", "created_by"]
    readonly_fields = ["plan", "number", "snapshot", "content_hash", "note", "created_by"]
