"""API serializers; the system secret is write-only and never serialised back."""

from __future__ import annotations

from rest_framework import serializers

from .models import Plan, System


class SystemSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        style={"input_type": "password"},
        help_text="Password or token; stored encrypted, never returned. Blank keeps it.",
    )
    has_secret = serializers.BooleanField(read_only=True)

    class Meta:
        model = System
        fields = [
            "uuid",
            "name",
            "kind",
            "environment",
            "role",
            "host",
            "port",
            "database",
            "username",
            "path",
            "options",
            "description",
            "secret",
            "has_secret",
        ]
        read_only_fields = ["uuid"]

    def create(self, validated_data: dict) -> System:
        secret = validated_data.pop("secret", "")
        system = System(**validated_data)
        system.set_secret(secret)
        system.save()
        return system

    def update(self, instance: System, validated_data: dict) -> System:
        secret = validated_data.pop("secret", "")
        for key, value in validated_data.items():
            setattr(instance, key, value)
        if secret:
            instance.set_secret(secret)
        instance.save()
        return instance


class PlanSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", queryset=System.objects.all())
    target = serializers.SlugRelatedField(slug_field="name", queryset=System.objects.all())
    owner = serializers.StringRelatedField()

    class Meta:
        model = Plan
        fields = [
            "uuid",
            "name",
            "slug",
            "description",
            "source",
            "target",
            "strategy",
            "batch_size",
            "parallelism",
            "failure_threshold_pct",
            "rollback_on_threshold",
            "status",
            "owner",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["uuid", "status", "owner", "created_at", "updated_at"]
