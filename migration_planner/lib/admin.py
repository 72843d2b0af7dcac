"""Admin helpers: evidence (audit events, sign-offs, runs and their ledger, results) is read-only
in the Django admin; it is written only by the services, which audit and check four eyes."""

from __future__ import annotations

from django.contrib import admin


class EvidenceAdmin(admin.ModelAdmin):
    """A model the admin may list and view, never add, change or delete."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
