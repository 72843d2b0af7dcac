"""The error queue: filter, top errors, record detail with inline correction, re-process,
ignore with a reason, CSV export — per run and across runs."""

from __future__ import annotations

import json
import uuid as uuid_module
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from migration_planner.lib.csv_safe import csv_writer
from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.roles import refusal_text
from migration_planner.lib.views import capability_required
from runs.engine.errors import EngineError
from runs.forms import IgnoreForm, QueueFilterForm
from runs.models import FailedRecord, Run
from runs.selectors import (
    OPEN_STATUSES,
    failed_record_facets,
    failed_record_filter,
    failed_record_get,
    failed_record_open_count,
    failed_record_search,
    failed_record_selection,
    failed_record_top_errors,
    failed_record_total,
    failure_category_check,
    run_get,
)
from runs.selectors.carried import records_as_viewed
from runs.services import (
    failed_record_correct,
    failed_record_ignore,
    failed_record_reprocess,
    failed_records_reprocess_later,
)

from .common import capability, refuse

QUEUE_DENIED = refusal_text("mp.work_queue")
REPROCESS_INLINE = 2_000  # larger selections are re-processed by a Celery task
CSV_COLUMNS = (
    "run",
    "entity",
    "source_key",
    "stage",
    "category",
    "field",
    "rule",
    "message",
    "status",
    "source_row",
    "corrected_values",
    "ignore_reason",
    "created_at",
)


def _run_or_none(uuid) -> Run | None:
    if uuid is None:
        return None
    try:
        return run_get(uuid=uuid)
    except Run.DoesNotExist as exc:
        raise Http404("No such run.") from exc


def _filters(params) -> tuple[QueueFilterForm, dict]:
    data = params.copy()
    if "status" not in data:
        data["status"] = "workable"
    form = QueueFilterForm(data)
    form.is_valid()
    return form, form.filters()


def _queryset(run: Run | None, filters: dict):
    return failed_record_filter(run=run, **filters)


@capability_required("mp.view")
def queue_view(request: HttpRequest, uuid=None) -> HttpResponse:
    run = _run_or_none(uuid)
    form, filters = _filters(request.GET)
    status = 200
    try:
        failure_category_check(filters["category"])
    except ApplicationError as exc:  # named on the page; the list is not narrowed by it
        refuse(request, exc)
        filters, status = {**filters, "category": ""}, 400
    for name, errors in form.errors.items():  # a stage or status that does not exist
        value = request.GET.get(name, "")
        messages.error(request, f"Filter {name} “{value}”: {' '.join(errors)}")
        status = 400
    after = request.GET.get("after", "")
    after_id = int(after) if after.isdigit() else None
    page = failed_record_search(run=run, filters=filters, after=after_id)
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "runs/queue.html",
        {
            "run": run,
            "form": form,
            "records": page.records,
            "next_cursor": page.next_cursor,
            "position": page.position,
            "total": page.total,
            "total_capped": page.capped,
            "facets": failed_record_facets(run=run),
            "query": query,
            "filters": filters,
            "open_total": failed_record_open_count(run=run),
            "superseded_total": failed_record_total(run=run, filters={"status": "superseded"})[0],
            "carried_total": run and failed_record_total(run=run, filters={"status": "carried"})[0],
            # a refused filter lists what it can, but offers no action on "all matching"
            "filter_refused": status == 400,
        },
        status=status,
    )


@capability_required("mp.view")
def queue_top_view(request: HttpRequest, uuid=None) -> HttpResponse:
    """The top-errors panel, loaded after the page (grouping scans every matching record)."""
    run = _run_or_none(uuid)
    _, filters = _filters(request.GET)
    try:
        top = failed_record_top_errors(_queryset(run, filters))
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=400)
    return render(
        request,
        "runs/partials/_top_errors.html",
        {"top_errors": top, "filters": filters, "run": run},
    )


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


def _selected(request: HttpRequest, cap: int | None = None):
    """The records a bulk action covers: the ticked ones, or all that match the filter."""
    run = _run_or_none(request.POST.get("run") or None)
    if request.POST.get("scope") == "filter":
        return failed_record_selection(run=run, filters=_filters(request.POST)[1], cap=cap)
    ids = []
    for value in request.POST.getlist("ids"):
        try:
            ids.append(uuid_module.UUID(value))
        except ValueError:
            continue
    return failed_record_selection(ids=ids, cap=cap)


@require_POST
@capability("mp.work_queue", QUEUE_DENIED)
def queue_reprocess_view(request: HttpRequest) -> HttpResponse:
    try:
        records, more = _selected(request, REPROCESS_INLINE)
        if more:
            count = failed_records_reprocess_later(records=_selected(request)[0], user=request.user)
            messages.info(
                request,
                f"Re-processing {count:,} records in the background; the "
                "queue's counts go down as chunks finish, and the run's log shows "
                "each chunk.",
            )
            return _back(request, "runs:queue_all")
        result = failed_record_reprocess(records=records, user=request.user)
    except (ApplicationError, EngineError) as exc:
        if isinstance(exc, ApplicationError):
            response = refuse(request, exc)
            if response is not None:
                return response
        else:
            messages.error(request, f"Re-processing failed: {exc}")
        return _back(request, "runs:queue_all")
    level = messages.SUCCESS if not result.still_failing else messages.WARNING
    messages.add_message(
        request,
        level,
        f"Re-processed {result.attempted:,} record(s): "
        f"{result.fixed:,} loaded and closed, {result.still_failing:,} still "
        "failing.",
    )
    return _back(request, "runs:queue_all")


@require_POST
@capability("mp.work_queue", QUEUE_DENIED)
def queue_ignore_view(request: HttpRequest) -> HttpResponse:
    form = IgnoreForm(request.POST)
    try:
        records, _ = _selected(request)
        reason = form.data.get("reason", "")
        count = failed_record_ignore(records=records, user=request.user, reason=reason)
    except ApplicationError as exc:
        response = refuse(request, exc)
        return response or _back(request, "runs:queue_all")
    messages.success(request, f"Ignored {count:,} record(s): {reason.strip()}")
    return _back(request, "runs:queue_all")


def _record(uuid) -> FailedRecord:
    try:
        return failed_record_get(uuid=uuid)
    except FailedRecord.DoesNotExist as exc:
        raise Http404("No such failed record.") from exc


def _rows(record: FailedRecord) -> list[tuple]:
    columns = list(record.source_row)
    return [
        (
            c,
            record.source_row.get(c),
            record.corrected_values.get(c, record.source_row.get(c)),
            c in record.corrected_values,
        )
        for c in columns
    ]


@capability_required("mp.view")
def failed_record_view(request: HttpRequest, uuid) -> HttpResponse:
    # shown (never saved) under the run answering for it, as the lists show it
    (record,) = records_as_viewed([_record(uuid)], None)
    return render(
        request,
        "runs/failed_record.html",
        {
            "record": record,
            "rows": _rows(record),
            "transformed": sorted(record.transformed_row.items()),
            "workable": record.status in OPEN_STATUSES,
            "errors_json": json.dumps(record.errors, indent=1, ensure_ascii=False),
        },
    )


def _changed_values(request: HttpRequest, record: FailedRecord) -> dict:
    values = {}
    for column, original in record.source_row.items():
        key = f"v:{column}"
        if key not in request.POST:
            continue
        new = request.POST[key]
        current = record.corrected_values.get(column, original)
        if new != (current if current is not None else ""):
            values[column] = new
    return values


@require_POST
@capability("mp.work_queue", QUEUE_DENIED)
def failed_record_correct_view(request: HttpRequest, uuid) -> HttpResponse:
    record = _record(uuid)
    values = _changed_values(request, record)
    try:
        if values:  # a record carried by reference is corrected as its copy
            record = failed_record_correct(record=record, user=request.user, values=values)
        if "reprocess" in request.POST:
            result = failed_record_reprocess(
                records=FailedRecord.objects.filter(pk=record.pk), user=request.user
            )
            ok = result.fixed == 1
            done = (
                "Passed and closed (dry run: nothing written)."
                if (record.run.mode == "dry_run")
                else "Loaded and closed."
            )
            (messages.success if ok else messages.warning)(
                request, done if ok else "Still failing — see the new message."
            )
        elif values:
            messages.success(request, f"Saved {len(values)} corrected value(s).")
    except (ApplicationError, EngineError) as exc:
        if isinstance(exc, ApplicationError):
            response = refuse(request, exc)
            if response is not None:
                return response
        else:
            messages.error(request, f"Re-processing failed: {exc}")
    return redirect("runs:failed_record", uuid=record.uuid)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(qs):
    writer = csv_writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for r in qs.select_related("run").order_by("id").iterator(chunk_size=2000):
        yield writer.writerow(
            [
                getattr(r, "view_run_uuid", None) or r.run.uuid,  # a run's view: as it shows it
                r.entity,
                r.source_key,
                r.stage,
                r.category,
                r.field,
                r.rule,
                r.message,
                getattr(r, "eff_status", r.status),
                json.dumps(r.source_row, ensure_ascii=False),
                json.dumps(r.corrected_values, ensure_ascii=False),
                r.ignore_reason,
                r.created_at.isoformat(),
            ]
        )


@capability_required("mp.view")
def queue_export_view(request: HttpRequest, uuid=None) -> HttpResponse | StreamingHttpResponse:
    run = _run_or_none(uuid)
    _, filters = _filters(request.GET)
    try:
        failure_category_check(filters["category"])
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    name = f"failed-records-{run.uuid if run else 'all'}.csv"
    response = StreamingHttpResponse(_csv_rows(_queryset(run, filters)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
