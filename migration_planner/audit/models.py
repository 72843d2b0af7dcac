"""The audit event: one row per action, kept in its original table (moved from validation)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .enums import AuditAction


class AuditEvent(models.Model):
    """Who did what to which object, when, with before/after (never secrets)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "validation_auditevent"  # the table predates this app: rows stay where they are
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(
                fields=["object_type", "object_id"], name="validation__object__0f92ed_idx"
            ),
            models.Index(fields=["action"], name="validation__action_f15f71_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_repr}"
