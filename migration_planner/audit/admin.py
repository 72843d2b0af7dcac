"""Audit events in the admin: view only (the audit log is the proof)."""

from django.contrib import admin

from migration_planner.lib.admin import ProofAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ProofAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]
