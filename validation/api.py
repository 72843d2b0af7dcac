"""REST endpoints of the validation app: validation rules (CRUD) and run reports (read).

Writes go through the services the HTML views call; ApplicationError becomes a 400
``{"detail", "field"}`` (``migration_planner.lib.api``).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from mappings.models import Plan
from migration_planner.lib.api import UUID_PATTERN
from runs.models import Run

from .models import RunReport, ValidationResult, ValidationRule
from .services import (
    prevalidation_execute,
    run_reconcile_request,
    validation_rule_delete,
    validation_rule_save,
)


class ValidationRuleSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="slug", queryset=Plan.objects.all())

    class Meta:
        model = ValidationRule
        fields = [
            "uuid",
            "plan",
            "name",
            "phase",
            "kind",
            "entity",
            "column",
            "params",
            "severity",
            "enabled",
        ]
        read_only_fields = ["uuid", "phase"]
        validators: list = []


class ValidationResultSerializer(serializers.ModelSerializer):
    rule = serializers.UUIDField(source="rule.uuid", read_only=True)
    name = serializers.CharField(source="rule.name", read_only=True)
    entity = serializers.CharField(source="rule.entity", read_only=True)
    kind = serializers.CharField(source="rule.kind", read_only=True)
    severity = serializers.CharField(source="rule.severity", read_only=True)

    class Meta:
        model = ValidationResult
        fields = [
            "rule",
            "name",
            "entity",
            "kind",
            "severity",
            "status",
            "expected",
            "observed",
            "details",
            "created_at",
        ]


class PrevalidateRequestSerializer(serializers.Serializer):
    plan = serializers.CharField(help_text="The plan's slug.")


class SupersedingRollbackSerializer(serializers.Serializer):
    """The rollback that superseded a report: whose run it rolled back, who asked."""

    run = serializers.UUIDField(source="run.uuid", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, allow_null=True, default=None
    )


class RunReportSerializer(serializers.ModelSerializer):
    run = serializers.UUIDField(source="run.uuid", read_only=True)
    superseded_by = SupersedingRollbackSerializer(read_only=True, allow_null=True)

    class Meta:
        model = RunReport
        fields = [
            "run",
            "verdict",
            "data",
            "duration_ms",
            "created_at",
            "superseded_verdict",
            "superseded_at",
            "superseded_by",
            "superseded_reason",
            "attempts",
            "history",
        ]


PLAN_FILTER = extend_schema(
    parameters=[OpenApiParameter("plan", str, description="A plan's slug.")]
)


@extend_schema_view(list=PLAN_FILTER)
class ValidationRuleViewSet(viewsets.ModelViewSet):
    serializer_class = ValidationRuleSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN

    @property
    def write_capability(self) -> str:
        return "mp.launch_run" if self.action == "prevalidate" else "mp.edit_plan"

    def get_queryset(self) -> QuerySet:
        rows = ValidationRule.objects.select_related("plan").order_by("plan__name", "phase", "name")
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        plan = data.pop("plan")
        serializer.instance = validation_rule_save(plan=plan, user=self.request.user, data=data)

    def perform_update(self, serializer) -> None:
        rule = serializer.instance
        data = {
            f: getattr(rule, f)
            for f in ("name", "kind", "entity", "column", "params", "severity", "enabled")
        }
        data.update({k: v for k, v in serializer.validated_data.items() if k != "plan"})
        serializer.instance = validation_rule_save(
            plan=rule.plan, user=self.request.user, data=data, rule=rule
        )

    def perform_destroy(self, instance) -> None:
        validation_rule_delete(rule=instance, user=self.request.user)

    @extend_schema(
        request=PrevalidateRequestSerializer, responses=ValidationResultSerializer(many=True)
    )
    @action(detail=False, methods=["post"], pagination_class=None)
    def prevalidate(self, request: Request) -> Response:
        """Run the plan's enabled pre-migration rules on the source now and return their
        results (as the rules page's "Run pre-validation"); a rule that cannot run is an
        ``error`` result, not a failure of the call."""
        body = PrevalidateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = get_object_or_404(Plan, slug=body.validated_data["plan"])
        results = prevalidation_execute(plan=plan)
        rows = (
            ValidationResult.objects.filter(pk__in=[r.pk for r in results])
            .select_related("rule")
            .order_by("rule__name", "id")
        )
        return Response(ValidationResultSerializer(rows, many=True).data)


class RunReportViewSet(viewsets.ReadOnlyModelViewSet):
    """The reconciliation report of a run, by the run's uuid."""

    serializer_class = RunReportSerializer
    lookup_field = "run__uuid"
    lookup_url_kwarg = "run"
    write_capability = "mp.view"  # reconcile: run_reconcile_request checks who may
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self) -> QuerySet:
        return RunReport.objects.select_related(
            "run", "superseded_by__run", "superseded_by__requested_by"
        ).order_by("-created_at")

    def get_object(self) -> RunReport:
        return get_object_or_404(self.get_queryset(), run__uuid=self.kwargs["run"])

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def reconcile(self, request: Request, run: str) -> Response:
        """Reconcile the run again (on a worker); 202, then the report is replaced. 403 for a
        role that may not, 400 for a run that cannot be reconciled."""
        target = get_object_or_404(Run, uuid=run)
        run_reconcile_request(run=target, user=request.user)
        return Response(
            {"detail": f"Reconciliation of run {target.uuid} queued."},
            status=status.HTTP_202_ACCEPTED,
        )


class CutoverSerializer(serializers.Serializer):
    """A plan's current cutover with its live checklist."""

    uuid = serializers.UUIDField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    frozen_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    downtime_seconds = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    checklist = serializers.ListField(child=serializers.DictField())
    runs_since_signoff = serializers.ListField(child=serializers.CharField())
    rolled_back_runs = serializers.ListField(child=serializers.DictField())


class CutoverDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["go", "no_go"])
    reason = serializers.CharField(required=False, allow_blank=True, default="")


def _cutover_data(plan: Plan) -> dict:
    from dataclasses import asdict

    from .cutover import cutover_checklist, runs_since_signoff

    cutover = plan.cutovers.first()
    return {
        "uuid": cutover.uuid if cutover else None,
        "status": cutover.status if cutover else None,
        "frozen_at": cutover.frozen_at if cutover else None,
        "decided_at": cutover.decided_at if cutover else None,
        "downtime_seconds": cutover.downtime_seconds if cutover else None,
        "reason": cutover.reason if cutover else "",
        "checklist": [asdict(c) for c in cutover_checklist(cutover)] if cutover else [],
        "runs_since_signoff": [str(r.uuid) for r in runs_since_signoff(plan)],
        "rolled_back_runs": cutover.rolled_back_runs if cutover else [],
    }


SLUG = [OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The plan's slug.")]


class CutoverViewSet(viewsets.ViewSet):
    """The cutover of a plan (by plan slug): checklist, freeze, go / no-go, rollback of
    everything written since the last sign-off. Writes: operators; 400 with the reason."""

    lookup_field = "slug"
    write_capability = "mp.rollback_run"

    def _plan(self, slug: str) -> Plan:
        return get_object_or_404(Plan, slug=slug)

    @extend_schema(parameters=SLUG, responses=CutoverSerializer)
    def retrieve(self, request: Request, slug: str) -> Response:
        return Response(CutoverSerializer(_cutover_data(self._plan(slug))).data)

    @extend_schema(parameters=SLUG, request=None, responses={201: CutoverSerializer})
    @action(detail=True, methods=["post"])
    def open(self, request: Request, slug: str) -> Response:
        """Start a cutover (one open at a time)."""
        from .cutover import cutover_open

        plan = self._plan(slug)
        cutover_open(plan=plan, user=request.user)
        return Response(CutoverSerializer(_cutover_data(plan)).data, status=201)

    @extend_schema(parameters=SLUG, request=None, responses=CutoverSerializer)
    @action(detail=True, methods=["post"])
    def freeze(self, request: Request, slug: str) -> Response:
        """Confirm that source writes are frozen (downtime starts)."""
        from .cutover import cutover_freeze_confirm

        plan = self._plan(slug)
        cutover_freeze_confirm(cutover=self._current(plan), user=request.user)
        return Response(CutoverSerializer(_cutover_data(plan)).data)

    @extend_schema(parameters=SLUG, request=CutoverDecisionSerializer, responses=CutoverSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, slug: str) -> Response:
        """Go (every check passes) or no-go (with a reason); recorded in the audit log."""
        from .cutover import cutover_decide

        plan = self._plan(slug)
        data = CutoverDecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cutover_decide(cutover=self._current(plan), user=request.user, **data.validated_data)
        return Response(CutoverSerializer(_cutover_data(plan)).data)

    @extend_schema(parameters=SLUG, request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, slug: str) -> Response:
        """Roll back every run written since the last sign-off, newest first (on a worker)."""
        from .cutover import cutover_rollback_request

        plan = self._plan(slug)
        runs = cutover_rollback_request(cutover=self._current(plan), user=request.user)
        return Response(
            {
                "detail": f"Rolling back {len(runs)} run(s), newest first.",
                "runs": [str(r.uuid) for r in runs],
            },
            status=status.HTTP_202_ACCEPTED,
        )

    @staticmethod
    def _current(plan: Plan):
        from migration_planner.lib.errors import ApplicationError

        cutover = plan.cutovers.first()
        if cutover is None:
            raise ApplicationError("Start a cutover first.")
        return cutover
