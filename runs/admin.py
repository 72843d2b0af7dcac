"""Runs in the admin: view only (runs, batches, ledger, failed records and rollbacks are the
proof of what was written; only the run services write them)."""

from django.contrib import admin

from migration_planner.lib.admin import ProofAdmin

from .models import Batch, FailedRecord, LedgerEntry, Rollback, Run, RunLog


@admin.register(Run)
class RunAdmin(ProofAdmin):
    list_display = ["plan", "mode", "status", "target", "loaded", "failed", "created_at"]
    list_filter = ["status", "mode"]
    list_select_related = ["plan", "target"]


@admin.register(Batch)
class BatchAdmin(ProofAdmin):
    list_display = ["run", "entity", "seq", "status", "attempts", "loaded", "failed"]
    list_filter = ["status"]


@admin.register(FailedRecord)
class FailedRecordAdmin(ProofAdmin):
    list_display = ["entity", "source_key", "stage", "category", "field", "status"]
    list_filter = ["stage", "category", "status"]
    search_fields = ["source_key", "message"]


admin.site.register(LedgerEntry, ProofAdmin)
admin.site.register(RunLog, ProofAdmin)
admin.site.register(Rollback, ProofAdmin)
