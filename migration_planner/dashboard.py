"""The dashboard's first-run guide: what a new team does first, ticked off as it is done."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.urls import reverse

from mappings.models import FieldMapping, Plan, System
from runs.models import Run


@dataclass(frozen=True)
class StartStep:
    title: str
    text: str
    url: str
    link: str
    done: bool
    capability: str = "mp.edit_plan"  # who may follow the link


def first_run_steps(*, plans: QuerySet[Plan], user) -> list[dict] | None:
    """The "start here" steps with their state and whether ``user`` may follow each link;
    None once a run exists (read-only)."""
    if Run.objects.exists():
        return None
    first = plans.first()
    plan_url = first.get_absolute_url() if first else reverse("mappings:plan_create")
    roles = set(System.objects.values_list("role", flat=True).distinct())
    steps = [
        StartStep(
            "Register the source system",
            "The legacy database or a file export (CSV, JSON, XLSX, XML) the records come from.",
            reverse("mappings:system_create"),
            "Add a system",
            bool(roles & {"source", "both"}),
            "mp.manage_systems",
        ),
        StartStep(
            "Register the target system",
            "The new system's database the records "
            "go into; test the connection and browse its schema.",
            reverse("mappings:system_create"),
            "Add a system",
            bool(roles & {"target", "both"}),
            "mp.manage_systems",
        ),
        StartStep(
            "Create a plan",
            "Pick source and target, strategy and batch size.",
            reverse("mappings:plan_create"),
            "New plan",
            first is not None,
        ),
        StartStep(
            "Map an entity",
            "Add a source table → target table, accept suggested "
            "column pairs and chain rules, watching the live preview.",
            plan_url,
            "Open the plan",
            FieldMapping.objects.exists(),
        ),
        StartStep(
            "Rehearse with a dry run",
            "Launch a dry run from the plan page: nothing is "
            "written, every failing row lands in the error queue.",
            plan_url,
            "Open the plan",
            False,
        ),
    ]
    return [{"step": s, "allowed": user.has_perm(s.capability)} for s in steps]
