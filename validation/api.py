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
from runs.models import Run

from .models import RunReport, ValidationRule
from .services import run_reconcile_request, validation_rule_delete, validation_rule_save


class ValidationRuleSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="slug", queryset=Plan.objects.all())

    class Meta:
        model = ValidationRule
        fields = ["uuid", "plan", "name", "phase", "kind", "entity", "column", "params",
                  "severity", "enabled"]
        read_only_fields = ["uuid", "phase"]
        validators: list = []


class RunReportSerializer(serializers.ModelSerializer):
    run = serializers.UUIDField(source="run.uuid", read_only=True)

    class Meta:
        model = RunReport
        fields = ["run", "verdict", "data", "duration_ms", "created_at"]


PLAN_FILTER = extend_schema(parameters=[OpenApiParameter("plan", str,
                                                         description="A plan's slug.")])


@extend_schema_view(list=PLAN_FILTER)
class ValidationRuleViewSet(viewsets.ModelViewSet):
    serializer_class = ValidationRuleSerializer
    lookup_field = "uuid"
    write_capability = "mp.edit_plan"

    def get_queryset(self) -> QuerySet:
        rows = ValidationRule.objects.select_related("plan").order_by("plan__name", "phase",
                                                                      "name")
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        plan = data.pop("plan")
        serializer.instance = validation_rule_save(plan=plan, user=self.request.user, data=data)

    def perform_update(self, serializer) -> None:
        rule = serializer.instance
        data = {f: getattr(rule, f) for f in ("name", "kind", "entity", "column", "params",
                                              "severity", "enabled")}
        data.update({k: v for k, v in serializer.validated_data.items() if k != "plan"})
        serializer.instance = validation_rule_save(plan=rule.plan, user=self.request.user,
                                                   data=data, rule=rule)

    def perform_destroy(self, instance) -> None:
        validation_rule_delete(rule=instance, user=self.request.user)


class RunReportViewSet(viewsets.ReadOnlyModelViewSet):
    """The reconciliation report of a run, by the run's uuid."""

    serializer_class = RunReportSerializer
    lookup_field = "run__uuid"
    lookup_url_kwarg = "run"

    def get_queryset(self) -> QuerySet:
        return RunReport.objects.select_related("run").order_by("-created_at")

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
