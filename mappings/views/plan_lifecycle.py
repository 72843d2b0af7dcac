"""Plan lifecycle pages: YAML import (validate, then import), clone, archive / restore,
delete (refused while runs exist)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required

from ..forms import PlanCloneForm, PlanImportForm
from ..services_plans import plan_archive, plan_clone, plan_delete
from ..yaml_io import plan_import_check, plan_import_yaml
from ._common import EDIT, plan_or_404


def _text(form: PlanImportForm) -> str:
    upload = form.cleaned_data.get("file")
    if upload is None:
        return form.cleaned_data.get("yaml") or ""
    raw = upload.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            f"{upload.name}: not UTF-8 text (byte {exc.start}).", field="file"
        ) from exc


@capability_required(EDIT)
def plan_import_view(request: HttpRequest) -> HttpResponse:
    """Validate shows errors with line and column, or what would be created and every
    unknown table / column; Import writes (refusing unknown names unless confirmed)."""
    form = PlanImportForm(request.POST or None, request.FILES or None)
    context: dict = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            text = _text(form)
            if not text.strip():
                raise ApplicationError("Paste the YAML or choose a file.", field="yaml")
            context["text"] = text
            if request.POST.get("action") == "import":
                plan = plan_import_yaml(
                    text=text,
                    user=request.user,
                    replace=form.cleaned_data["replace"],
                    allow_unknown_schema=form.cleaned_data["allow_unknown_schema"],
                )
                messages.success(request, f"Plan “{plan.name}” imported.")
                return redirect(plan)
            context["check"] = plan_import_check(text=text)
        except ApplicationError as exc:
            context["error"] = exc
    return render(request, "mappings/plan_import.html", context)


@capability_required(EDIT)
def plan_clone_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    form = PlanCloneForm(request.POST or None, initial={"name": f"{plan.name} (copy)"})
    if request.method == "POST" and form.is_valid():
        try:
            copy = plan_clone(plan=plan, user=request.user, name=form.cleaned_data["name"])
        except ApplicationError as exc:
            form.add_error("name" if exc.field == "name" else None, exc.message)
        else:
            messages.success(request, f"Plan “{copy.name}” created as a copy of “{plan.name}”.")
            return redirect(copy)
    return render(request, "mappings/plan_clone.html", {"plan": plan, "form": form})


@require_POST
@capability_required(EDIT)
def plan_archive_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    archived = request.POST.get("archived", "1") == "1"
    plan_archive(plan=plan, user=request.user, archived=archived)
    messages.success(request, f"Plan “{plan.name}” {'archived' if archived else 'restored'}.")
    return redirect(plan)


@capability_required(EDIT)
def plan_delete_view(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: what deleting would remove (or why it is refused); POST: delete."""
    plan = plan_or_404(slug)
    runs = plan.runs.count()
    if request.method == "POST":
        try:
            plan_delete(plan=plan, user=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(plan)
        messages.success(request, f"Plan “{plan.name}” deleted.")
        return redirect("mappings:plan_list")
    return render(
        request,
        "mappings/plan_delete.html",
        {
            "plan": plan,
            "runs": runs,
            "versions": plan.versions.count(),
            "entities": plan.entities.count(),
        },
    )
