"""API serializers for runs, the error queue and rollbacks."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .enums import RunMode, Stage
from .models import FailedRecord, Rollback, Run
from .selectors import run_progress
from .threshold import run_threshold_breach, run_threshold_clear

RUN_FIELDS = [
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
    "deleted",
    "cdc",
    "error",
    "launched_by",
    "created_at",
    "started_at",
    "finished_at",
]


class RunSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target = serializers.SlugRelatedField(slug_field="name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    launched_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = Run
        fields = RUN_FIELDS
        read_only_fields = fields


class EntityProgressSerializer(serializers.Serializer):
    name = serializers.CharField()
    total = serializers.IntegerField()
    pct = serializers.IntegerField()
    batches_total = serializers.IntegerField()
    batches_done = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())


class ProgressSerializer(serializers.Serializer):
    pct = serializers.IntegerField()
    rows_per_s = serializers.FloatField()
    eta_seconds = serializers.SerializerMethodField()
    elapsed_seconds = serializers.SerializerMethodField()
    open_errors = serializers.IntegerField()
    entities = EntityProgressSerializer(many=True)

    def get_eta_seconds(self, obj) -> int | None:
        return int(obj.eta.total_seconds()) if obj.eta else None

    def get_elapsed_seconds(self, obj) -> int | None:
        return int(obj.elapsed.total_seconds()) if obj.elapsed else None


class ThresholdBreachSerializer(serializers.Serializer):
    batch = serializers.IntegerField()
    entity = serializers.CharField()
    failed = serializers.IntegerField()
    extracted = serializers.IntegerField()
    failure_pct = serializers.FloatField()
    threshold_pct = serializers.FloatField()
    message = serializers.CharField()


class ThresholdClearSerializer(serializers.Serializer):
    failed = serializers.IntegerField()
    extracted = serializers.IntegerField()
    failure_pct = serializers.FloatField()
    threshold_pct = serializers.FloatField()
    message = serializers.CharField()


class RunStatusSerializer(RunSerializer):
    """A run with its live progress (per entity, rows/s, ETA, open error count)."""

    progress = serializers.SerializerMethodField()
    would_abort = serializers.SerializerMethodField(
        help_text="Dry runs: where a load would have aborted on the plan's failure threshold "
        "(batch, failure_pct, threshold_pct, message); null when it would not have."
    )
    would_go_through = serializers.SerializerMethodField(
        help_text="Succeeded dry runs that stayed under the plan's failure threshold: the final "
        "failure rate (failure_pct, threshold_pct, message); null otherwise."
    )

    class Meta(RunSerializer.Meta):
        fields = [*RUN_FIELDS, "progress", "would_abort", "would_go_through"]
        read_only_fields = fields

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, obj: Run) -> dict:
        return ProgressSerializer(run_progress(obj)).data

    @extend_schema_field(ThresholdBreachSerializer(allow_null=True))
    def get_would_abort(self, obj: Run) -> dict | None:
        breach = run_threshold_breach(obj)
        return breach.as_dict() if breach else None

    @extend_schema_field(ThresholdClearSerializer(allow_null=True))
    def get_would_go_through(self, obj: Run) -> dict | None:
        clear = run_threshold_clear(obj)
        return clear.as_dict() if clear else None


class RunLaunchSerializer(serializers.Serializer):
    plan = serializers.SlugField(help_text="The plan's slug.")
    target = serializers.CharField(
        required=False, help_text="Target system name (default: the plan's target)."
    )
    mode = serializers.ChoiceField(choices=RunMode.choices, default=RunMode.DRY_RUN)
    entity = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Only this entity."
    )


class RollbackRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    with_later_runs = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also roll back the later runs that wrote the same tables (newest first, "
        "each verified; stops at the first mismatch).",
    )


class RollbackSerializer(serializers.ModelSerializer):
    run = serializers.UUIDField(source="run.uuid", read_only=True)
    requested_by = serializers.StringRelatedField(allow_null=True)
    tables_differing = serializers.SerializerMethodField()

    class Meta:
        model = Rollback
        fields = [
            "run",
            "status",
            "requested_by",
            "batches_undone",
            "rows_deleted",
            "rows_restored",
            "checksums_before_run",
            "checksums_after",
            "tables_differing",
            "error",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_tables_differing(self, obj: Rollback) -> list[str]:
        before, after = obj.checksums_before_run or {}, obj.checksums_after or {}
        return sorted(t for t in after if before.get(t) != after[t])


class FailedRecordSerializer(serializers.ModelSerializer):
    # in a run's view (runs.selectors.carried) a record it carries by reference is its own,
    # with the status it shows there
    run = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    handled_by = serializers.StringRelatedField(allow_null=True)

    def get_run(self, obj: FailedRecord) -> str:
        return str(getattr(obj, "view_run_uuid", None) or obj.run.uuid)

    def get_status(self, obj: FailedRecord) -> str:
        return getattr(obj, "eff_status", obj.status)

    class Meta:
        model = FailedRecord
        fields = [
            "uuid",
            "run",
            "entity",
            "source_key",
            "source_row",
            "transformed_row",
            "stage",
            "category",
            "field",
            "rule",
            "message",
            "errors",
            "status",
            "corrected_values",
            "ignore_reason",
            "handled_by",
            "handled_at",
            "created_at",
        ]
        read_only_fields = fields


class FailedRecordCorrectSerializer(serializers.Serializer):
    corrected_values = serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=True),
        help_text="Source column → corrected value.",
    )


class QueueFilterSerializer(serializers.Serializer):
    run = serializers.UUIDField(required=False)
    entity = serializers.CharField(required=False, allow_blank=True)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False, allow_blank=True)
    category = serializers.CharField(required=False, allow_blank=True)
    field = serializers.CharField(required=False, allow_blank=True)
    status = serializers.CharField(required=False, allow_blank=True)
    q = serializers.CharField(required=False, allow_blank=True)


class SelectionSerializer(serializers.Serializer):
    """Either explicit record uuids or a filter (as for the list) selecting the records."""

    ids = serializers.ListField(child=serializers.UUIDField(), required=False)
    filter = QueueFilterSerializer(required=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("ids") and "filter" not in attrs:
            raise serializers.ValidationError("Give record ids or a filter.")
        return attrs


class ReprocessRequestSerializer(SelectionSerializer):
    current_rules = serializers.BooleanField(
        default=None,
        allow_null=True,
        help_text="Use the plan's current rules (false: the run's frozen version). Unset: the "
        "current rules, except into a production target, which takes only the run's "
        "signed-off version (and re-processing into production needs the operator role).",
    )


class IgnoreRequestSerializer(SelectionSerializer):
    reason = serializers.CharField()


class ReprocessResultSerializer(serializers.Serializer):
    attempted = serializers.IntegerField()
    fixed = serializers.IntegerField()
    still_failing = serializers.IntegerField()
    more = serializers.BooleanField(help_text="More records matched than one call handles.")


class IgnoreResultSerializer(serializers.Serializer):
    ignored = serializers.IntegerField()
