"""Admin for systems and mappings; the system secret is a write-only password field."""

from __future__ import annotations

from django import forms
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


class SystemAdminForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown. Leave blank to keep the current secret.",
    )

    class Meta:
        model = System
        fields = [
            "name", "kind", "environment", "role", "host", "port", "database", "username",
            "path", "options", "description",
        ]

    def save(self, commit: bool = True) -> System:
        system = super().save(commit=False)
        if self.cleaned_data.get("secret"):
            system.set_secret(self.cleaned_data["secret"])
        if commit:
            system.save()
        return system


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    form = SystemAdminForm
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
class PlanAdmin(SimpleHistoryAdmin):
    list_display = ["name", "source", "target", "strategy", "status", "updated_at"]
    list_filter = ["status", "strategy"]
    list_select_related = ["source", "target"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MilestoneInline, EntityInline]


class FieldInline(admin.TabularInline):
    model = FieldMapping
    extra = 0
    fields = ["position", "target_column", "source_columns", "default_value", "required"]
    show_change_link = True


@admin.register(EntityMapping)
class EntityMappingAdmin(SimpleHistoryAdmin):
    list_display = ["name", "plan", "source_table", "target_table", "load_mode", "load_order"]
    list_select_related = ["plan"]
    inlines = [FieldInline]


class RuleStepInline(admin.TabularInline):
    model = RuleStep
    extra = 0


@admin.register(FieldMapping)
class FieldMappingAdmin(SimpleHistoryAdmin):
    list_display = ["target_column", "entity", "position", "required"]
    list_select_related = ["entity"]
    inlines = [RuleStepInline]


@admin.register(RuleStep)
class RuleStepAdmin(SimpleHistoryAdmin):
    list_display = ["field", "position", "rule"]
    list_select_related = ["field"]


class LookupEntryInline(admin.TabularInline):
    model = LookupEntry
    extra = 0


@admin.register(LookupTable)
class LookupTableAdmin(SimpleHistoryAdmin):
    list_display = ["name", "plan", "default_value"]
    list_select_related = ["plan"]
    inlines = [LookupEntryInline]


@admin.register(PlanVersion)
class PlanVersionAdmin(EvidenceAdmin):
    """A version is what was signed off: view only."""

    list_display = ["plan", "number", "content_hash", "created_by", "created_at"]
    list_select_related = ["plan", "created_by"]
    readonly_fields = ["plan", "number", "snapshot", "content_hash", "note", "created_by"]
