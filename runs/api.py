"""REST endpoints for runs, their controls and rollbacks, and the error queue.

Writes call the same services as the HTML views; the services enforce the mp.* capabilities
and RolePermission checks ``write_capability`` (per action) before they are reached.
"""

from __future__ import annotations

import uuid as uuid_lib

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from mappings.models import Plan, System
from migration_planner.lib.api import UUID_PATTERN
from migration_planner.lib.errors import ApplicationError

from .api_extra import RunCompareAction, TopErrorsAction
from .models import FailedRecord, Rollback, Run
from .selectors import (
    PAGE_SIZE,
    failed_record_filter_planned,
    failed_record_position,
    failed_record_selection,
    failed_record_total,
    run_list,
)
from .selectors.carried import records_as_viewed
from .serializers import (
    FailedRecordCorrectSerializer,
    FailedRecordSerializer,
    IgnoreRequestSerializer,
    IgnoreResultSerializer,
    ReprocessRequestSerializer,
    ReprocessResultSerializer,
    RollbackRequestSerializer,
    RollbackSerializer,
    RunLaunchSerializer,
    RunSerializer,
    RunStatusSerializer,
)
from .services import (
    failed_record_correct,
    failed_record_ignore,
    failed_record_reprocess,
    run_cancel,
    run_create,
    run_pause,
    run_resume,
    run_rollback_request,
    run_rollback_stack_request,
    sync_stop,
)

REPROCESS_CAP = 5_000
RUN_WRITE = {
    "create": "mp.launch_run",
    "pause": "mp.control_run",
    "resume": "mp.control_run",
    "cancel": "mp.control_run",
    "stop": "mp.control_run",
    "rollback": "mp.rollback_run",
}
RUN_FILTERS = [
    OpenApiParameter(name, str, description=f"Only runs with this {name}.")
    for name in ("plan", "status", "target", "launched_by")
]
QUEUE_FILTERS = [
    OpenApiParameter("run", OpenApiTypes.UUID, description="Only this run's records."),
    *(OpenApiParameter(n, str) for n in ("entity", "stage", "category", "field")),
    OpenApiParameter(
        "status", str, description="open, fixed, reprocessed, ignored, or workable (open or fixed)."
    ),
    OpenApiParameter("q", str, description="Text in the message or in the source key (any case)."),
]


@extend_schema_view(list=extend_schema(parameters=RUN_FILTERS))
class RunViewSet(
    RunCompareAction,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Runs: launch (POST), list, status with live progress, controls and rollback."""

    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN

    @property
    def write_capability(self) -> str:
        return RUN_WRITE.get(self.action, "mp.launch_run")

    def get_queryset(self):
        params = self.request.query_params
        return run_list(
            **{k: params.get(k) or None for k in ("status", "target", "launched_by")},
            plan_slug=params.get("plan") or None,
        )

    def get_serializer_class(self):
        if self.action == "retrieve":
            return RunStatusSerializer
        return RunLaunchSerializer if self.action == "create" else RunSerializer

    @extend_schema(request=RunLaunchSerializer, responses={201: RunStatusSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        data = RunLaunchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = get_object_or_404(Plan, slug=data.validated_data["plan"])
        target = None
        if data.validated_data.get("target"):
            target = get_object_or_404(System, name=data.validated_data["target"])
        run = run_create(
            plan=plan,
            user=request.user,
            target=target,
            mode=data.validated_data["mode"],
            scope_entity=data.validated_data.get("entity") or "",
        )
        run = self.get_queryset().get(pk=run.pk)
        return Response(RunStatusSerializer(run).data, status=status.HTTP_201_CREATED)

    def _control(self, request: Request, service) -> Response:
        run = self.get_object()
        service(run=run, user=request.user)
        return Response(RunStatusSerializer(self.get_queryset().get(pk=run.pk)).data)

    @extend_schema(request=None, responses=RunStatusSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, uuid=None) -> Response:
        """Stop claiming new batches (running ones finish)."""
        return self._control(request, run_pause)

    @extend_schema(request=None, responses=RunStatusSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, uuid=None) -> Response:
        """Queue the paused run's pending batches again."""
        return self._control(request, run_resume)

    @extend_schema(request=None, responses=RunStatusSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, uuid=None) -> Response:
        """Cancel pending batches; committed ones stay until rolled back."""
        return self._control(request, run_cancel)

    @extend_schema(request=None, responses=RunStatusSerializer)
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, uuid=None) -> Response:
        """Sync runs: apply every change committed so far (drain), then finish and drop the
        replication slot."""
        return self._control(request, sync_stop)

    @extend_schema(request=RollbackRequestSerializer, responses={202: RollbackSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, uuid=None) -> Response:
        """Undo the run from the ledger and verify the target's checksums (asynchronous).
        409 (listing them, newest first) while later runs wrote the same tables, unless
        ``with_later_runs`` asks to roll those back first."""
        run = self.get_object()
        body = RollbackRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        service = (
            run_rollback_stack_request
            if body.validated_data["with_later_runs"]
            else run_rollback_request
        )
        rollback = service(run=run, user=request.user, reason=body.validated_data["reason"])
        rollback = Rollback.objects.select_related("run", "requested_by").get(pk=rollback.pk)
        return Response(RollbackSerializer(rollback).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=RollbackSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def rollbacks(self, request: Request, uuid=None) -> Response:
        """The run's rollbacks, newest first, with their verification."""
        run = self.get_object()
        items = Rollback.objects.filter(run=run).select_related("run", "requested_by")
        return Response(RollbackSerializer(items, many=True).data)


class FailedRecordPagination(CursorPagination):
    """Keyset pagination (newest first by id): as fast on page 2,000 as on page 1. Each page
    also says how many records match (``count``, a floor when ``count_capped``), its number
    and the number of pages — the same figures, from the same selectors, as the queue page."""

    ordering = "-id"
    page_size = PAGE_SIZE

    def paginate_queryset(self, queryset, request, view=None):
        self._queryset, self._view = queryset, view
        page = super().paginate_queryset(queryset, request, view)
        if page and not request.query_params.get("run"):  # across runs: a record carried by
            page = records_as_viewed(page, None)  # reference under the run answering for it
        return page

    def decode_cursor(self, request):
        """A cursor this API did not give is bad input (400 naming it), not a missing page."""
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ApplicationError(
                "The cursor is not one this API gave: follow the next/previous links, or start "
                "again without ?cursor=.",
                field="cursor",
            ) from None

    def get_paginated_response(self, data):
        total, capped = self._view.queue_total()
        first = self.page[0].id if self.page and self.cursor else None
        pos = failed_record_position(
            self._queryset, first_id=first, total=total, total_capped=capped, size=self.page_size
        )
        response = super().get_paginated_response(data)
        response.data = {
            "count": total,
            "count_capped": capped,
            "page": pos.number,
            "page_capped": pos.number_capped,
            "pages": pos.pages,
            "pages_capped": pos.pages_capped,
            **response.data,
        }
        return response

    def get_paginated_response_schema(self, schema: dict) -> dict:
        paged = super().get_paginated_response_schema(schema)
        number = {"type": "integer", "minimum": 0}
        flag = {"type": "boolean"}
        paged["properties"] = {
            "count": number,
            "count_capped": flag,
            "page": {"type": "integer", "minimum": 1},
            "page_capped": flag,
            "pages": {"type": "integer", "minimum": 1},
            "pages_capped": flag,
            **paged["properties"],
        }
        paged["required"] = sorted({*paged.get("required", []), "count", "page", "pages"})
        return paged


@extend_schema_view(
    list=extend_schema(parameters=QUEUE_FILTERS), top=extend_schema(parameters=QUEUE_FILTERS)
)
class FailedRecordViewSet(
    TopErrorsAction, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The error queue: filter, correct (PATCH), re-process and ignore."""

    serializer_class = FailedRecordSerializer
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    pagination_class = FailedRecordPagination
    write_capability = "mp.work_queue"

    def _run(self, uuid) -> Run | None:
        if not uuid:
            return None
        try:
            uuid_lib.UUID(str(uuid))
        except ValueError:
            raise ApplicationError(f"“{uuid}” is not a run UUID.", field="run") from None
        return get_object_or_404(Run, uuid=uuid)

    def _filters(self) -> dict:
        params = self.request.query_params
        return {
            k: params.get(k, "") for k in ("entity", "stage", "category", "field", "status", "q")
        }

    def get_queryset(self):
        run = self._run(self.request.query_params.get("run"))
        qs = failed_record_filter_planned(run=run, filters=self._filters())
        return qs.select_related("run", "handled_by")

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        """One record, under the run answering for it (a record carried by reference), as
        the list shows it; shown only, never saved."""
        (record,) = records_as_viewed([self.get_object()], None)
        return Response(self.get_serializer(record).data)

    def queue_total(self) -> tuple[int, bool]:
        """The filter's total as the queue page counts it (a floor when capped)."""
        run = self._run(self.request.query_params.get("run"))
        return failed_record_total(run=run, filters=self._filters())

    @extend_schema(request=FailedRecordCorrectSerializer, responses=FailedRecordSerializer)
    def partial_update(self, request: Request, uuid=None) -> Response:
        """Store corrected source values (the record becomes "fixed", awaiting re-process)."""
        record = get_object_or_404(FailedRecord, uuid=uuid)
        body = FailedRecordCorrectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = failed_record_correct(
            record=record, user=request.user, values=body.validated_data["corrected_values"]
        )
        record = FailedRecord.objects.select_related("run", "handled_by").get(pk=record.pk)
        return Response(FailedRecordSerializer(record).data)

    def _selection(self, data: dict, cap: int | None):
        if data.get("ids"):
            return failed_record_selection(ids=data["ids"], cap=cap)
        filters = dict(data["filter"])
        run = self._run(filters.pop("run", None))
        return failed_record_selection(run=run, filters=filters, cap=cap)

    @extend_schema(request=ReprocessRequestSerializer, responses=ReprocessResultSerializer)
    @action(detail=False, methods=["post"])
    def reprocess(self, request: Request) -> Response:
        """Re-process the given records (ids) or all open ones matching a filter."""
        body = ReprocessRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        records, more = self._selection(body.validated_data, REPROCESS_CAP)
        result = failed_record_reprocess(
            records=records, user=request.user, current_rules=body.validated_data["current_rules"]
        )
        return Response(
            {
                "attempted": result.attempted,
                "fixed": result.fixed,
                "still_failing": result.still_failing,
                "more": more,
            }
        )

    @extend_schema(request=IgnoreRequestSerializer, responses=IgnoreResultSerializer)
    @action(detail=False, methods=["post"])
    def ignore(self, request: Request) -> Response:
        """Close the given (or matching) open records as ignored, with a reason."""
        body = IgnoreRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        records, _ = self._selection(body.validated_data, None)
        count = failed_record_ignore(
            records=records, user=request.user, reason=body.validated_data["reason"]
        )
        return Response({"ignored": count})
