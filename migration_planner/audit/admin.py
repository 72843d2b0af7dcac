from django.contrib import admin

from migration_planner.lib.admin import EvidenceAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(EvidenceAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]
