"""API serializers for runs."""

from __future__ import annotations

from rest_framework import serializers

from .models import Run


class RunSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target = serializers.SlugRelatedField(slug_field="name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    launched_by = serializers.StringRelatedField()

    class Meta:
        model = Run
        fields = [
            "uuid",
            "plan",
            "version",
            "target",
            "mode",
            "scope_entity",
            "status",
            "source_total",
            "batches_total",
            "extracted",
            "loaded",
            "inserted",
            "updated",
            "failed",
            "filtered",
            "duplicates",
            "error",
            "launched_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields
