"""System pages: list, create/edit/delete, test connection, schema browser, file upload."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError, PermissionDeniedError, TooLargeError
from migration_planner.lib.uploads import upload_refusal
from migration_planner.lib.views import capability_required

from ..enums import SystemKind
from ..forms import FileUploadForm, SystemForm
from ..models import FileUpload, System
from ..schema import system_schema, system_test_connection
from ..selectors import system_list
from ..services_systems import system_delete, system_save
from ..services_uploads import ACCEPTED, file_upload_receive
from ._common import SYSTEMS


@capability_required("mp.view")
def system_list_view(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "mappings/system_list.html",
        {"systems": system_list(), "can_manage": request.user.has_perm(SYSTEMS)},
    )


@capability_required("mp.view")
def system_detail_view(request: HttpRequest, uuid) -> HttpResponse:
    system = get_object_or_404(System, uuid=uuid)
    return render(
        request,
        "mappings/system_detail.html",
        _detail_context(
            system,
            can_manage=request.user.has_perm(SYSTEMS),
            form=FileUploadForm() if system.kind == SystemKind.FILE else None,
        ),
    )


def _detail_context(system: System, *, can_manage: bool, form, error: str | None = None) -> dict:
    return {
        "system": system,
        "can_manage": can_manage,
        "upload_form": form,
        "accepted": ACCEPTED,
        "upload_error": error,
        "uploads": list(system.uploads.all()[:5]) if system.kind == SystemKind.FILE else [],
    }


@capability_required(SYSTEMS)
def system_form_view(request: HttpRequest, uuid=None) -> HttpResponse:
    system = get_object_or_404(System, uuid=uuid) if uuid else None
    # The form validates into its own copy: system_save compares with the stored row and
    # the page shows the system as stored, whatever was posted (REVIEW9 J3-1).
    form = SystemForm(
        request.POST or None, instance=System.objects.get(pk=system.pk) if system else None
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            saved = system_save(
                user=request.user,
                data=form.cleaned_data,
                system=form.instance if system else None,
                secret=form.cleaned_data.get("secret", ""),
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            if isinstance(exc, PermissionDeniedError):
                status = 403
        else:
            messages.success(request, f"System “{saved.name}” saved.")
            return redirect(saved)
    return render(
        request, "mappings/system_form.html", {"form": form, "system": system}, status=status
    )


@require_POST
@capability_required(SYSTEMS)
def system_delete_view(request: HttpRequest, uuid) -> HttpResponse:
    system = get_object_or_404(System, uuid=uuid)
    try:
        system_delete(system=system, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(system)
    messages.success(request, f"System “{system.name}” deleted.")
    return redirect("mappings:system_list")


@require_POST
@capability_required(SYSTEMS)
def system_test_view(request: HttpRequest, uuid) -> HttpResponse:
    system = get_object_or_404(System, uuid=uuid)
    report = system_test_connection(system)
    return render(
        request, "mappings/system_detail.html#test_result", {"system": system, "report": report}
    )


@capability_required("mp.view")
def system_schema_view(request: HttpRequest, uuid) -> HttpResponse:
    system = get_object_or_404(System, uuid=uuid)
    try:
        schema, error = system_schema(system, fresh="refresh" in request.GET), None
    except ApplicationError as exc:
        schema, error = None, exc.message
    tables = sorted(schema.tables.values(), key=lambda t: t.name) if schema else []
    return render(
        request, "mappings/system_schema.html", {"system": system, "tables": tables, "error": error}
    )


@require_POST
@capability_required(SYSTEMS)
def system_upload_view(request: HttpRequest, uuid) -> HttpResponse:
    """Keep the uploaded file and queue its staging (303 to the page, which shows progress);
    413 over the size limit, 400 for anything else wrong, with the reason on the page."""
    system = get_object_or_404(System, uuid=uuid)
    form = FileUploadForm(request.POST, request.FILES)
    error, status = upload_refusal(request), 413
    if not error:
        status = 400
        if form.is_valid():
            try:
                file_upload_receive(
                    system=system,
                    user=request.user,
                    upload=form.cleaned_data["file"],
                    table=form.cleaned_data.get("table") or None,
                )
                return HttpResponseRedirect(system.get_absolute_url(), status=303)
            except TooLargeError as exc:
                error, status = exc.message, 413
            except ApplicationError as exc:
                error = exc.message
        else:
            error = "; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items())
    return render(
        request,
        "mappings/system_detail.html",
        _detail_context(system, can_manage=True, form=form, error=error),
        status=status,
    )


@capability_required("mp.view")
def upload_status_view(request: HttpRequest, uuid, upload) -> HttpResponse:
    """The polled progress of one upload: 286 (stop polling) once it is staged or failed."""
    record = get_object_or_404(FileUpload, uuid=upload, system__uuid=uuid)
    return render(
        request,
        "mappings/partials/_upload_status.html",
        {"upload": record},
        status=286 if record.finished else 200,
    )
