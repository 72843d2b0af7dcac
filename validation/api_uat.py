"""REST endpoints for UAT test cases and results, sign-offs and the audit log, calling the
services the pages call (``validation.signoff``); ApplicationError becomes a 400/403 body."""

from __future__ import annotations

import datetime as dt
import uuid as uuid_lib

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from mappings.models import Plan
from migration_planner.lib.api import UUID_PATTERN
from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.roles import refusal_text
from runs.models import Run

from . import selectors
from .models import AuditEvent, SignOff, UATResult, UATTestCase
from .signoff import (
    signoff_decide,
    uat_case_delete,
    uat_case_save,
    uat_coverage,
    uat_result_record,
)
from .signoff_rollback import signoffs_with_rollbacks

ERROR = OpenApiResponse(description='Refused: {"detail": "...", "field": "..."}')
PLAN_FILTER = OpenApiParameter("plan", str, description="A plan's slug.")
RUN_FILTER = OpenApiParameter("run", OpenApiTypes.UUID, description="A run's uuid.")


def _run(value, field: str = "run") -> Run:
    try:
        uuid = uuid_lib.UUID(str(value))
    except ValueError:
        raise ApplicationError(f"Give the {field} as a run UUID.", field=field) from None
    return get_object_or_404(Run.objects.select_related("plan", "version"), uuid=uuid)


# --------------------------------------------------------------------------- UAT


class UATCaseSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="slug", queryset=Plan.objects.all())

    class Meta:
        model = UATTestCase
        fields = ["uuid", "plan", "title", "steps", "expected_result", "position"]
        read_only_fields = ["uuid", "position"]


class UATResultSerializer(serializers.ModelSerializer):
    case = serializers.UUIDField(source="case.uuid", read_only=True)
    run = serializers.UUIDField(source="run.uuid", read_only=True)
    tester = serializers.CharField(source="tester.username", read_only=True)

    class Meta:
        model = UATResult
        fields = ["case", "run", "tester", "outcome", "comment", "recorded_at"]


class UATResultRequestSerializer(serializers.Serializer):
    run = serializers.UUIDField(help_text="The (load) run the case was tested on.")
    outcome = serializers.CharField(help_text="pass, fail or blocked.")
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Required for fail and blocked."
    )


class UATCoverageSerializer(serializers.Serializer):
    cases = serializers.IntegerField()
    with_result = serializers.IntegerField()
    passing = serializers.IntegerField()
    failing = serializers.IntegerField()
    blocked = serializers.IntegerField()
    untested = serializers.IntegerField()


@extend_schema_view(list=extend_schema(parameters=[PLAN_FILTER]))
class UATCaseViewSet(viewsets.ModelViewSet):
    """UAT test cases per plan (analysts write them); results per run (approvers record)."""

    serializer_class = UATCaseSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN

    @property
    def write_capability(self) -> str:
        return "mp.record_uat" if self.action == "results" else "mp.edit_plan"

    def get_queryset(self) -> QuerySet:
        rows = UATTestCase.objects.select_related("plan").order_by("plan__name", "position", "id")
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = uat_case_save(
            plan=data.pop("plan"), user=self.request.user, data=data
        )

    def perform_update(self, serializer) -> None:
        case = serializer.instance
        plan = serializer.validated_data.get("plan", case.plan)
        if plan.pk != case.plan_id:
            raise ApplicationError(
                "The plan of an existing test case cannot be changed.", field="plan"
            )
        data = {
            k: serializer.validated_data.get(k, getattr(case, k))
            for k in ("title", "steps", "expected_result")
        }
        serializer.instance = uat_case_save(
            plan=case.plan, user=self.request.user, data=data, case=case
        )

    def perform_destroy(self, instance) -> None:
        uat_case_delete(case=instance, user=self.request.user)

    @extend_schema(
        methods=["GET"], parameters=[RUN_FILTER], responses=UATResultSerializer(many=True)
    )
    @extend_schema(
        methods=["POST"],
        request=UATResultRequestSerializer,
        responses={200: UATResultSerializer, 400: ERROR},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def results(self, request: Request, uuid=None) -> Response:
        """GET the case's results (optionally on one run); POST records (or replaces) the
        caller's outcome on a run — fail / blocked need a comment."""
        case = self.get_object()
        if request.method == "GET":
            rows = case.results.select_related("case", "run", "tester").order_by("recorded_at")
            if request.query_params.get("run"):
                rows = rows.filter(run=_run(request.query_params["run"]))
            return Response(UATResultSerializer(rows, many=True).data)
        body = UATResultRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = uat_result_record(
            case=case,
            run=_run(body.validated_data["run"]),
            user=request.user,
            outcome=body.validated_data["outcome"],
            comment=body.validated_data["comment"],
        )
        return Response(UATResultSerializer(result).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("plan", str, required=True, description="A plan's slug."),
            RUN_FILTER,
        ],
        responses={200: UATCoverageSerializer, 400: ERROR},
    )
    @action(detail=False, methods=["get"])
    def coverage(self, request: Request) -> Response:
        """How many of the plan's cases have a result on the run, and how many pass."""
        plan = get_object_or_404(Plan, slug=request.query_params.get("plan", ""))
        run = _run(request.query_params["run"]) if request.query_params.get("run") else None
        return Response(UATCoverageSerializer(uat_coverage(plan=plan, run=run)).data)


# --------------------------------------------------------------------------- sign-off


class SignOffListSerializer(serializers.ListSerializer):
    """Looks up the rollbacks of all the sign-offs' runs in one query."""

    def to_representation(self, data):  # noqa: ANN001, ANN201 -- DRF's signature
        return super().to_representation(signoffs_with_rollbacks(data))


class SignOffSerializer(serializers.ModelSerializer):
    plan = serializers.CharField(source="plan.slug", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    run = serializers.UUIDField(source="run.uuid", read_only=True, allow_null=True)
    approver = serializers.CharField(source="approver.username", read_only=True)
    report_verdict = serializers.SerializerMethodField(
        help_text="The verdict of the run's report frozen at the sign-off."
    )
    run_rolled_back_since = serializers.SerializerMethodField(
        help_text="Null, or the newest rollback started after the sign-off that has its run "
        "(run_id, rollback_id, rollback_run_id, rollback_status, state: rolled_back | "
        "rolling_back | rollback_failed | superseded, requested_by, at, text). "
        "It does not void the sign-off."
    )

    class Meta:
        model = SignOff
        list_serializer_class = SignOffListSerializer
        fields = [
            "uuid",
            "plan",
            "version",
            "run",
            "approver",
            "decision",
            "reason",
            "created_at",
            "voided_at",
            "voided_reason",
            "report_verdict",
            "run_rolled_back_since",
        ]

    def get_report_verdict(self, obj: SignOff) -> str | None:
        return (obj.report_snapshot or {}).get("verdict")

    def get_run_rolled_back_since(self, obj: SignOff) -> dict | None:
        if not hasattr(obj, "rolled_back_since"):  # one sign-off: look it up alone
            signoffs_with_rollbacks([obj])
        note = obj.rolled_back_since
        return note.as_dict() if note else None


class SignOffRequestSerializer(serializers.Serializer):
    plan = serializers.CharField(help_text="The plan's slug.")
    run = serializers.UUIDField(
        help_text="The load run whose report is approved or rejected; "
        "its plan version is what is signed."
    )
    decision = serializers.ChoiceField(choices=["approved", "rejected"])
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Required to reject, and to approve despite "
        "failing UAT cases or a rolled-back run.",
    )


@extend_schema_view(list=extend_schema(parameters=[PLAN_FILTER]))
class SignOffViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Sign-offs of plan versions (newest first); POST approves or rejects (approvers only,
    never their own edits). Ask for one by moving the plan to in_review
    (``POST /api/plans/{slug}/status/``)."""

    serializer_class = SignOffSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    write_capability = "mp.sign_off"

    def get_queryset(self) -> QuerySet:
        rows = SignOff.objects.select_related("plan", "version", "run", "approver").order_by(
            "-created_at", "-id"
        )
        slug = self.request.query_params.get("plan")
        return rows.filter(plan__slug=slug) if slug else rows

    @extend_schema(request=SignOffRequestSerializer, responses={201: SignOffSerializer, 400: ERROR})
    def create(self, request: Request) -> Response:
        body = SignOffRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = get_object_or_404(Plan, slug=body.validated_data["plan"])
        run = get_object_or_404(
            Run.objects.select_related("version"), uuid=body.validated_data["run"], plan=plan
        )
        signoff = signoff_decide(
            plan=plan,
            version=run.version,
            run=run,
            user=request.user,
            decision=body.validated_data["decision"],
            reason=body.validated_data["reason"],
        )
        signoff = self.get_queryset().get(pk=signoff.pk)
        return Response(SignOffSerializer(signoff).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------- audit log


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "ip",
        ]


def _date(request: Request, name: str) -> dt.date | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApplicationError(f"“{text}” is not a date (YYYY-MM-DD).", field=name) from None


AUDIT_FILTERS = [
    OpenApiParameter("actor", str, description="User name (exact, any case)."),
    OpenApiParameter("action", str, description="create, update, sign_off, rollback, …"),
    OpenApiParameter("type", str, description="Object type, e.g. mappings.Plan."),
    OpenApiParameter("q", str, description="Text in the object, its id or the actor."),
    OpenApiParameter("from", OpenApiTypes.DATE, description="On or after this day."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="On or before this day."),
]


@extend_schema_view(list=extend_schema(parameters=AUDIT_FILTERS))
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The audit log, newest first (who did what, when, before / after; secrets masked)."""

    serializer_class = AuditEventSerializer
    write_capability = "mp.view_audit"

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        if not request.user.has_perm("mp.view_audit"):
            self.permission_denied(request, message=refusal_text("mp.view_audit"))

    def get_queryset(self) -> QuerySet:
        if self.action != "list":
            return AuditEvent.objects.order_by("-at", "-id")
        g = self.request.query_params
        return selectors.audit_events(
            actor=g.get("actor", ""),
            action=g.get("action", ""),
            object_type=g.get("type", ""),
            text=g.get("q", "").strip(),
            date_from=_date(self.request, "from"),
            date_to=_date(self.request, "to"),
        )
