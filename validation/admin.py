from django.contrib import admin

from .models import AuditEvent, SignOff, UATResult, UATTestCase, ValidationResult, ValidationRule


@admin.register(ValidationRule)
class ValidationRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "plan", "phase", "kind", "entity", "severity", "enabled"]
    list_filter = ["phase", "kind", "severity"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


admin.site.register(ValidationResult)
admin.site.register(UATTestCase)
admin.site.register(UATResult)
admin.site.register(SignOff)
