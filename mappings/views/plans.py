"""Plan pages: list, create/edit, milestones, status (the plan page itself, which shows the
plan's runs too, is composed above the apps: ``migration_planner.plan_pages``)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from migration_planner.lib.errors import ApplicationError
from migration_planner.lib.views import capability_required

from .. import services_edit as edit
from ..forms import MilestoneForm, PlanForm
from ..models import Milestone, Plan
from ..selectors import plan_list
from ._common import EDIT, can_edit, plan_or_404


@capability_required("mp.view")
def plan_list_view(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    return render(
        request,
        "mappings/plan_list.html",
        {
            "plans": plan_list(archived=archived),
            "can_edit": can_edit(request),
            "archived": archived,
            "archived_count": 0 if archived else plan_list(archived=True).count(),
        },
    )


def _form_error(form, exc: ApplicationError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@capability_required(EDIT)
def plan_create_view(request: HttpRequest) -> HttpResponse:
    form = PlanForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            plan = edit.plan_create(user=request.user, data=form.cleaned_data)
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Plan “{plan.name}” created.")
            return redirect(plan)
    return render(request, "mappings/plan_form.html", {"form": form})


@capability_required(EDIT)
def plan_edit_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    form = PlanForm(request.POST or None, instance=Plan.objects.get(pk=plan.pk))
    if request.method == "POST" and form.is_valid():
        try:
            edit.plan_update(plan=plan, user=request.user, data=form.cleaned_data)
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Plan saved.")
            return redirect(plan)
    return render(request, "mappings/plan_form.html", {"form": form, "plan": plan})


@require_POST
@capability_required(EDIT)
def plan_status_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    try:
        edit.plan_status_set(plan=plan, user=request.user, status=request.POST.get("status", ""))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(plan)


def _milestones(request: HttpRequest, plan: Plan, form=None, editing=None) -> HttpResponse:
    return render(
        request,
        "mappings/plan_detail.html#milestones",
        {
            "plan": plan,
            "milestones": plan.milestones.all(),
            "can_edit": can_edit(request),
            "milestone_form": form or MilestoneForm(),
            "editing": editing,
        },
    )


@capability_required("mp.view")
def milestones_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = plan_or_404(slug)
    editing = request.GET.get("edit")
    milestone = plan.milestones.filter(pk=editing).first() if editing else None
    form = MilestoneForm(instance=milestone) if milestone else None
    return _milestones(request, plan, form, milestone)


@require_POST
@capability_required(EDIT)
def milestone_save_view(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    plan = plan_or_404(slug)
    milestone = get_object_or_404(Milestone, plan=plan, pk=pk) if pk else None
    form = MilestoneForm(request.POST)
    if form.is_valid():
        try:
            edit.milestone_save(
                plan=plan, user=request.user, data=form.cleaned_data, milestone=milestone
            )
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            return _milestones(request, plan)
    return _milestones(request, plan, form, milestone)


@require_POST
@capability_required(EDIT)
def milestone_delete_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    plan = plan_or_404(slug)
    edit.milestone_delete(
        milestone=get_object_or_404(Milestone, plan=plan, pk=pk), user=request.user
    )
    return _milestones(request, plan)
