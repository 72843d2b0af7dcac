from django.contrib import admin

from migration_planner.lib.admin import EvidenceAdmin

from .models import Batch, FailedRecord, LedgerEntry, Rollback, Run, RunLog


@admin.register(Run)
class RunAdmin(EvidenceAdmin):
    list_display = ["plan", "mode", "status", "target", "loaded", "failed", "created_at"]
    list_filter = ["status", "mode"]
    list_select_related = ["plan", "target"]


@admin.register(Batch)
class BatchAdmin(EvidenceAdmin):
    list_display = ["run", "entity", "seq", "status", "attempts", "loaded", "failed"]
    list_filter = ["status"]


@admin.register(FailedRecord)
class FailedRecordAdmin(EvidenceAdmin):
    list_display = ["entity", "source_key", "stage", "category", "field", "status"]
    list_filter = ["stage", "category", "status"]
    search_fields = ["source_key", "message"]


admin.site.register(LedgerEntry, EvidenceAdmin)
admin.site.register(RunLog, EvidenceAdmin)
admin.site.register(Rollback, EvidenceAdmin)
