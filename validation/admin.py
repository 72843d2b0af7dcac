"""Validation in the admin: rules are editable; results, UAT results, sign-offs and run reports
are view only (sign-offs only through signoff_decide: four eyes, audited)."""

from django.contrib import admin

from migration_planner.lib.admin import ProofAdmin

from .models import (
    RunReport,
    SignOff,
    UATResult,
    UATTestCase,
    ValidationResult,
    ValidationRule,
)


@admin.register(ValidationRule)
class ValidationRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "plan", "phase", "kind", "entity", "severity", "enabled"]
    list_filter = ["phase", "kind", "severity"]


admin.site.register(UATTestCase)
admin.site.register(ValidationResult, ProofAdmin)
admin.site.register(UATResult, ProofAdmin)
admin.site.register(SignOff, ProofAdmin)
admin.site.register(RunReport, ProofAdmin)
