"""Serializers of the reports the plan and system actions return (``api_extra``): schema
drift, the YAML import's check, mapping suggestions and table profiles."""

from rest_framework import serializers


class DriftItemSerializer(serializers.Serializer):
    side = serializers.CharField(help_text="source or target")
    table = serializers.CharField()
    column = serializers.CharField(help_text="Empty for the table itself.")
    change = serializers.CharField()
    was = serializers.CharField()
    now = serializers.CharField()
    breaks = serializers.ListField(
        child=serializers.CharField(), help_text="What in the plan uses it."
    )
    severity = serializers.CharField(help_text="blocking, warning or info")
    text = serializers.CharField()


class EntityDriftSerializer(serializers.Serializer):
    entity = serializers.CharField()
    source_table = serializers.CharField()
    target_table = serializers.CharField()
    items = DriftItemSerializer(many=True)


class DriftReportSerializer(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True)
    source = serializers.CharField()
    target = serializers.CharField()
    checked_at = serializers.DateTimeField()
    stored = serializers.BooleanField(
        help_text="False: the version stored no schema (existence check only)."
    )
    blocking = serializers.IntegerField(help_text="Changes that refuse a run.")
    message = serializers.CharField(
        allow_blank=True, help_text="The refusal text ('' when nothing blocks)."
    )
    entities = EntityDriftSerializer(many=True)


class ProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    column = serializers.IntegerField()
    path = serializers.CharField()
    message = serializers.CharField()


class ImportCheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    exists = serializers.BooleanField(
        help_text="A plan with this slug exists (import needs replace)."
    )
    counts = serializers.DictField(child=serializers.IntegerField())
    problems = ProblemSerializer(many=True, help_text="Tables / columns the live schemas lack.")


class SuggestionSerializer(serializers.Serializer):
    source = serializers.CharField()
    target = serializers.CharField()
    score = serializers.FloatField()
    reason = serializers.CharField()


class SuggestionAcceptSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="Source column.")
    target = serializers.CharField(help_text="Target column to map from it.")


class CountedValueSerializer(serializers.Serializer):
    value = serializers.CharField(allow_blank=True)
    count = serializers.IntegerField()


class ColumnProfileSerializer(serializers.Serializer):
    name = serializers.CharField()
    rows = serializers.IntegerField()
    nulls = serializers.IntegerField()
    null_pct = serializers.FloatField()
    distinct = serializers.IntegerField()
    minimum = serializers.CharField(allow_null=True)
    maximum = serializers.CharField(allow_null=True)
    max_length = serializers.IntegerField()
    top_values = CountedValueSerializer(many=True)
    shapes = CountedValueSerializer(many=True)
    shape_count = serializers.IntegerField()
    padded = serializers.IntegerField()
    mixed_case = serializers.BooleanField()
    suggestions = serializers.ListField(child=serializers.CharField())


class TableProfileSerializer(serializers.Serializer):
    table = serializers.CharField()
    rows = serializers.IntegerField()
    sampled = serializers.BooleanField(help_text="True: a bounded sample of a larger table.")
    key = serializers.ListField(child=serializers.CharField())
    duplicate_keys = CountedValueSerializer(many=True, help_text="The first 20, most first.")
    duplicate_total = serializers.IntegerField(help_text="Values held by more than one row.")
    columns = ColumnProfileSerializer(many=True)
