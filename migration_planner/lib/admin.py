"""Admin registrations for the proof: rows only the app's services may write."""

from __future__ import annotations

from django.contrib import admin


class ProofAdmin(admin.ModelAdmin):
    """View only (no add, change or delete): sign-offs, audit events, runs, batches, ledger,
    failed records, rollbacks and reports are the proof of a migration; they are written by
    the app's services (audited, four eyes), never by hand in the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
