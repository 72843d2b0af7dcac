"""Lookup tables: list/create, edit rows in place (htmx), CSV upload and download."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.roles import refusal_text
from migration_planner.lib.uploads import upload_refusal
from migration_planner.lib.views import capability_required

from ..forms import LookupEntryForm, LookupForm, UploadForm
from ..models import LookupEntry, LookupTable
from ..services_lookups import (
    lookup_csv_decode,
    lookup_delete,
    lookup_entry_delete,
    lookup_entry_save,
    lookup_export_csv,
    lookup_import_csv,
    lookup_save,
)
from ._common import EDIT, can_edit, plan_or_404, triggered

PAGE = "mappings/lookup_detail.html"


@capability_required("mp.view")
def lookup_list_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    form = LookupForm(request.POST or None)
    if request.method == "POST":
        if not can_edit(request):
            return HttpResponse(refusal_text("mp.edit_plan"), status=403)
        if form.is_valid():
            try:
                lookup = lookup_save(plan=plan, user=request.user, data=form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                return redirect("mappings:lookup_detail", slug=slug, uuid=lookup.uuid)
    lookups = plan.lookups.prefetch_related("entries")
    return render(
        request,
        "mappings/lookup_list.html",
        {"plan": plan, "lookups": lookups, "form": form, "can_edit": can_edit(request)},
    )


def _lookup(plan, uuid) -> LookupTable:
    return get_object_or_404(LookupTable.objects.select_related("plan"), plan=plan, uuid=uuid)


def _rows(
    request: HttpRequest, lookup: LookupTable, error: str | None = None, editing: int | None = None
) -> HttpResponse:
    return render(
        request,
        f"{PAGE}#rows",
        {
            "plan": lookup.plan,
            "lookup": lookup,
            "entries": lookup.entries.order_by("key"),
            "error": error,
            "editing": editing,
            "can_edit": can_edit(request),
        },
    )


@capability_required("mp.view")
def lookup_detail_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    plan = plan_or_404(slug)
    lookup = _lookup(plan, uuid)
    if request.htmx:
        return _rows(request, lookup, editing=int(request.GET.get("edit", 0)) or None)
    return render(
        request,
        PAGE,
        {
            "plan": plan,
            "lookup": lookup,
            "entries": lookup.entries.order_by("key"),
            "can_edit": can_edit(request),
            "upload_form": UploadForm(),
            "form": LookupForm(
                initial={
                    "name": lookup.name,
                    "description": lookup.description,
                    "default_value": lookup.default_value,
                }
            ),
        },
    )


@require_POST
@capability_required(EDIT)
def lookup_edit_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    lookup = _lookup(plan_or_404(slug), uuid)
    form = LookupForm(request.POST)
    if form.is_valid():
        try:
            lookup_save(plan=lookup.plan, user=request.user, data=form.cleaned_data, lookup=lookup)
            messages.success(request, "Lookup table saved.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Check the name: letters, digits, - and _ only.")
    return redirect("mappings:lookup_detail", slug=slug, uuid=lookup.uuid)


@require_POST
@capability_required(EDIT)
def lookup_delete_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    lookup = _lookup(plan_or_404(slug), uuid)
    try:
        lookup_delete(lookup=lookup, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("mappings:lookup_detail", slug=slug, uuid=lookup.uuid)
    messages.success(request, f"Lookup “{lookup.name}” deleted.")
    return redirect("mappings:lookup_list", slug=slug)


@require_POST
@capability_required(EDIT)
def lookup_entry_save_view(
    request: HttpRequest, slug: str, uuid, pk: int | None = None
) -> HttpResponse:
    lookup = _lookup(plan_or_404(slug), uuid)
    entry = get_object_or_404(LookupEntry, table=lookup, pk=pk) if pk else None
    form = LookupEntryForm(request.POST)
    if not form.is_valid():
        return _rows(request, lookup, error="Key: required, at most 255 characters.", editing=pk)
    try:
        lookup_entry_save(
            lookup=lookup,
            user=request.user,
            entry=entry,
            key=form.cleaned_data["key"],
            value=form.cleaned_data["value"],
        )
    except ApplicationError as exc:
        return _rows(request, lookup, error=exc.message, editing=pk)
    return triggered(_rows(request, lookup))


@require_POST
@capability_required(EDIT)
def lookup_entry_delete_view(request: HttpRequest, slug: str, uuid, pk: int) -> HttpResponse:
    lookup = _lookup(plan_or_404(slug), uuid)
    lookup_entry_delete(
        entry=get_object_or_404(LookupEntry, table=lookup, pk=pk), user=request.user
    )
    return triggered(_rows(request, lookup))


@require_POST
@capability_required(EDIT)
def lookup_upload_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    lookup = _lookup(plan_or_404(slug), uuid)
    form = UploadForm(request.POST, request.FILES)
    if upload_refusal(request) or not form.is_valid():
        messages.error(request, upload_refusal(request) or "Choose a CSV file to upload.")
        return redirect("mappings:lookup_detail", slug=slug, uuid=lookup.uuid)
    try:
        text = lookup_csv_decode(raw=form.cleaned_data["file"].read())
        count = lookup_import_csv(lookup=lookup, user=request.user, text=text)
    except ApplicationError as exc:
        messages.error(request, f"{form.cleaned_data['file'].name}: {exc.message}")
    else:
        messages.success(request, f"{count} rows loaded into “{lookup.name}”.")
    return redirect("mappings:lookup_detail", slug=slug, uuid=lookup.uuid)


@capability_required("mp.view")
def lookup_download_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    lookup = _lookup(plan_or_404(slug), uuid)
    response = HttpResponse(lookup_export_csv(lookup=lookup), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{lookup.name}.csv"'
    return response
