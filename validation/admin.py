from django.contrib import admin

from migration_planner.lib.admin import EvidenceAdmin

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


admin.site.register(ValidationResult, EvidenceAdmin)
admin.site.register(UATTestCase)
admin.site.register(UATResult, EvidenceAdmin)
admin.site.register(SignOff, EvidenceAdmin)
admin.site.register(RunReport, EvidenceAdmin)
