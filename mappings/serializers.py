"""API serializers: shape and types only; every rule of the domain is checked by the services.

The system secret is write-only and never serialised back. Model-derived uniqueness validators
are switched off so the services' ApplicationError (``{"detail", "field"}``) answers instead.
"""

from __future__ import annotations

from rest_framework import serializers

from .models import (
    EntityMapping,
    FieldMapping,
    FileUpload,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    PlanVersion,
    RuleStep,
    System,
)

PLAN_LIMITS = {
    "batch_size": {"min_value": 1, "max_value": 1_000_000},
    "parallelism": {"min_value": 1, "max_value": 64},
    "failure_threshold_pct": {"min_value": 0, "max_value": 100},
}


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
        extra_kwargs = {"name": {"validators": []}}


class ConnectionTableSerializer(serializers.Serializer):
    name = serializers.CharField()
    row_estimate = serializers.IntegerField()


class ConnectionReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField(help_text="Server version, or why the connection failed.")
    tables = ConnectionTableSerializer(many=True)


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    data_type = serializers.CharField()
    max_length = serializers.IntegerField(allow_null=True)
    nullable = serializers.BooleanField()
    primary_key = serializers.BooleanField()
    has_default = serializers.BooleanField()
    generated = serializers.BooleanField()


class TableSerializer(serializers.Serializer):
    name = serializers.CharField()
    schema = serializers.CharField(allow_null=True)
    row_estimate = serializers.IntegerField()
    primary_key = serializers.ListField(child=serializers.CharField())
    unique = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    columns = ColumnSerializer(many=True)


class PlanSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", queryset=System.objects.all())
    target = serializers.SlugRelatedField(slug_field="name", queryset=System.objects.all())
    owner = serializers.StringRelatedField(allow_null=True)

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
            "archived_at",
        ]
        read_only_fields = [
            "uuid",
            "slug",
            "status",
            "owner",
            "created_at",
            "updated_at",
            "archived_at",
        ]
        extra_kwargs = PLAN_LIMITS  # what the database constraints allow, as a 400


class PlanCloneSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150, help_text="The copy's name (unique).")


class PlanArchiveSerializer(serializers.Serializer):
    archived = serializers.BooleanField(default=True, help_text="False restores the plan.")


class PlanStatusSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="draft, in_review or signed_off.")


class MilestoneSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="slug", queryset=Plan.objects.all())

    class Meta:
        model = Milestone
        fields = ["id", "plan", "phase", "start", "end", "deliverable", "position"]
        read_only_fields = ["id", "position"]


class EntitySerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="slug", queryset=Plan.objects.all())
    source_key = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Source key column(s); default: the source table's primary key.",
    )
    target_key = serializers.CharField(
        required=False, help_text="Default: the target table's first primary-key column."
    )

    class Meta:
        model = EntityMapping
        fields = [
            "uuid",
            "plan",
            "name",
            "source_table",
            "target_table",
            "source_key",
            "target_key",
            "external_id",
            "load_mode",
            "load_order",
            "watermark_column",
            "delete_policy",
            "delete_mark_column",
            "delete_mark_value",
            "notes",
            "filters",
            "dedupe_on",
        ]
        read_only_fields = ["uuid", "filters", "dedupe_on"]
        validators: list = []
        extra_kwargs = {"name": {"required": False}, "load_order": {"required": False}}


class StepInlineSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleStep
        fields = ["uuid", "position", "rule", "params"]
        read_only_fields = fields


class FieldMappingSerializer(serializers.ModelSerializer):
    entity = serializers.SlugRelatedField(slug_field="uuid", queryset=EntityMapping.objects.all())
    source_columns = serializers.ListField(child=serializers.CharField(), required=False)
    steps = StepInlineSerializer(many=True, read_only=True)

    class Meta:
        model = FieldMapping
        fields = [
            "uuid",
            "entity",
            "target_column",
            "source_columns",
            "default_value",
            "required",
            "position",
            "notes",
            "steps",
        ]
        read_only_fields = ["uuid", "position", "steps"]
        validators: list = []


class RuleStepSerializer(serializers.ModelSerializer):
    field = serializers.SlugRelatedField(slug_field="uuid", queryset=FieldMapping.objects.all())
    params = serializers.DictField(
        required=False, default=dict, help_text="Parameters declared by the rule type."
    )

    class Meta:
        model = RuleStep
        fields = ["uuid", "field", "position", "rule", "params"]
        read_only_fields = ["uuid", "position"]


class StepMoveSerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=["up", "down"])


class LookupTableSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="slug", queryset=Plan.objects.all())
    entry_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = LookupTable
        fields = ["uuid", "plan", "name", "description", "default_value", "entry_count"]
        read_only_fields = ["uuid"]
        validators: list = []


class LookupEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LookupEntry
        fields = ["key", "value"]
        validators: list = []
        extra_kwargs = {"value": {"allow_blank": True}}


class LookupCsvSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="UTF-8 CSV with the header key,value.")


class CountSerializer(serializers.Serializer):
    rows = serializers.IntegerField()


class ParamSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    required = serializers.BooleanField()
    default = serializers.JSONField(allow_null=True)
    choices = serializers.ListField(child=serializers.CharField())
    help = serializers.CharField()
    min_value = serializers.IntegerField(allow_null=True)
    max_value = serializers.IntegerField(allow_null=True)


class RuleTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    null_handling = serializers.CharField()
    accepts_frame = serializers.BooleanField(help_text="Takes several source columns at once.")
    category = serializers.CharField(help_text="Failure category of rows the rule rejects.")
    params = ParamSerializer(many=True)


class VersionSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = PlanVersion
        fields = ["uuid", "number", "content_hash", "note", "created_by", "created_at"]
        read_only_fields = fields


class VersionCreateSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


class ChangeSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="added, removed or changed.")
    what = serializers.CharField()
    details = serializers.ListField(child=serializers.CharField())


class DiffSerializer(serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    changes = ChangeSerializer(many=True)


class PreviewRequestSerializer(serializers.Serializer):
    rows = serializers.IntegerField(required=False, default=20, min_value=1, max_value=500)
    sample = serializers.ChoiceField(choices=["first", "random"], required=False, default="first")


class PreviewCellSerializer(serializers.Serializer):
    column = serializers.CharField(help_text="The target column.")
    source = serializers.CharField(
        allow_null=True, help_text="The field's source value(s), 'a + b' for several."
    )
    value = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    rule = serializers.CharField(
        help_text="The failing rule step ('type': the target column's "
        "type refuses the value); empty when the cell is good."
    )


class PreviewColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    data_type = serializers.CharField()
    required = serializers.BooleanField(help_text="NOT NULL without default.")
    sources = serializers.ListField(child=serializers.CharField())
    mapped = serializers.BooleanField()


class PreviewRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    status = serializers.CharField(help_text="ok, failed, or skipped (filtered / duplicate).")
    source = serializers.ListField(child=serializers.CharField(allow_null=True))
    result = PreviewCellSerializer(many=True)


class PreviewSerializer(serializers.Serializer):
    entity = serializers.CharField()
    limit = serializers.IntegerField()
    order = serializers.CharField()
    source_columns = serializers.ListField(child=serializers.CharField())
    target_columns = serializers.ListField(
        child=serializers.CharField(),
        help_text="Mapped target columns, in table order (the order of each row's result).",
    )
    columns = PreviewColumnSerializer(
        many=True, help_text="Every target column in table order, mapped or not."
    )
    rows = PreviewRowSerializer(many=True)
    failed = serializers.IntegerField(
        help_text="Rows that would fail to load: a failing rule, "
        "a value the target type refuses, or (every row) a "
        "required target column not mapped."
    )
    unloadable = serializers.ListField(
        child=serializers.CharField(),
        help_text="Required target columns not mapped: every row fails to load until they are.",
    )
    problems = serializers.ListField(
        child=serializers.CharField(),
        help_text="Unmapped required target columns, result "
        "values the target column's type would refuse (those cells carry the error) and "
        "date/timestamp columns fed text with no parse_date step.",
    )
    error = serializers.CharField(allow_null=True)
    elapsed_ms = serializers.FloatField()


class PlanImportSerializer(serializers.Serializer):
    yaml = serializers.CharField(required=False, help_text="The v1 YAML document as text.")
    file = serializers.FileField(required=False, help_text="Or the YAML document as a file.")
    replace = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Overwrite the contents of an existing plan with the same slug.",
    )
    allow_unknown_schema = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Import although tables / columns are missing from the systems' schemas "
        "(a plan for a schema not yet created); otherwise they are refused (400).",
    )


class FileUploadSerializer(serializers.ModelSerializer):
    system = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    percent = serializers.IntegerField(read_only=True, help_text="Share of the bytes read.")
    columns = serializers.ListField(child=serializers.CharField(), read_only=True)
    preview = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(allow_null=True)),
        read_only=True,
        help_text="The first rows, values in the order of ``columns``.",
    )

    class Meta:
        model = FileUpload
        fields = [
            "uuid",
            "system",
            "filename",
            "table",
            "size",
            "status",
            "rows_parsed",
            "bytes_read",
            "percent",
            "rows",
            "columns",
            "preview",
            "format",
            "encoding",
            "delimiter",
            "error",
            "error_row",
            "error_column",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class FileUploadRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, JSON, XLSX or XML, at most MP_UPLOAD_MAX_MB.")
    table = serializers.RegexField(
        r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        required=False,
        help_text="Staged table name; defaults to the file name.",
    )
