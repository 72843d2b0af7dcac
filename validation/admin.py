from django.contrib import admin

from .models import SignOff, UATResult, UATTestCase, ValidationResult, ValidationRule


@admin.register(ValidationRule)
class ValidationRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "plan", "phase", "kind", "entity", "severity", "enabled"]
    list_filter = ["phase", "kind", "severity"]


admin.site.register(ValidationResult)
admin.site.register(UATTestCase)
admin.site.register(UATResult)
admin.site.register(SignOff)
