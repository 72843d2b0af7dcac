"""HTML pages: validation rules, run report (+ exports), UAT, sign-off, audit log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.contrib import messages
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from mappings.models import Plan
from migration_planner.lib.csv_safe import csv_writer
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from migration_planner.lib.views import capability_required
from runs.models import Run

from . import selectors
from .checks import KIND_PARAMS, NAMED_PATTERNS
from .cutover import (
    CheckItem,
    cutover_checklist,
    cutover_decide,
    cutover_freeze_confirm,
    cutover_open,
    cutover_rollback_request,
    final_run,
    last_signoff,
    runs_since_signoff,
)
from .enums import AuditAction, Severity, SignOffDecision, UATOutcome, ValidationKind
from .models import UATResult, UATTestCase, ValidationResult, ValidationRule
from .services import (
    prevalidation_execute,
    run_reconcile_request,
    user_may_reconcile,
    validation_rule_delete,
    validation_rule_save,
)
from .signoff import (
    signoff_decide,
    uat_case_delete,
    uat_case_save,
    uat_coverage,
    uat_result_record,
)
from .signoff_rollback import signoffs_with_rollbacks

ALL_PARAMS = sorted({p for _c, spec in KIND_PARAMS.values() for p in spec})


def _rule_data(post) -> dict:
    kind = post.get("kind", "")
    wanted = KIND_PARAMS.get(kind, (False, {}))[1]
    return {
        "name": post.get("name", ""),
        "kind": kind,
        "entity": post.get("entity", ""),
        "column": post.get("column", ""),
        "severity": post.get("severity", ""),
        "enabled": post.get("enabled") == "on",
        "params": {p: post.get(p) for p in wanted if post.get(p, "") != ""},
    }


@capability_required("mp.view")
def validation_page(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    rules = list(plan.validation_rules.all())
    editing = next((r for r in rules if str(r.uuid) == request.GET.get("edit")), None)
    latest = (
        ValidationResult.objects.filter(rule__plan=plan, run__isnull=True)
        .select_related("rule")
        .order_by("-created_at")[: len(rules) or 1]
    )
    return render(
        request,
        "validation/rules.html",
        {
            "plan": plan,
            "rules": rules,
            "editing": editing,
            "latest": latest,
            "kinds": ValidationKind.choices,
            "severities": Severity.choices,
            "entities": plan.entities.values_list("name", flat=True),
            "params": ALL_PARAMS,
            "kind_params": {k: list(v[1]) for k, v in KIND_PARAMS.items()},
            "patterns": NAMED_PATTERNS,
            "form": request.POST or None,
        },
    )


@require_POST
@capability_required("mp.edit_plan")
def rule_save_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    rule = None
    if request.POST.get("uuid"):
        rule = get_object_or_404(ValidationRule, plan=plan, uuid=request.POST["uuid"])
    try:
        validation_rule_save(plan=plan, user=request.user, data=_rule_data(request.POST), rule=rule)
    except ApplicationError as exc:
        messages.error(request, f"{exc.field}: {exc.message}" if exc.field else exc.message)
        return validation_page(request, slug)
    messages.success(request, "Rule saved.")
    return redirect("validation:rules", slug=slug)


@require_POST
@capability_required("mp.edit_plan")
def rule_delete_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    rule = get_object_or_404(ValidationRule, plan__slug=slug, uuid=uuid)
    validation_rule_delete(rule=rule, user=request.user)
    messages.success(request, f"Rule “{rule.name}” deleted.")
    return redirect("validation:rules", slug=slug)


@require_POST
@capability_required("mp.launch_run")
def prevalidate_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    try:
        results = prevalidation_execute(plan=plan)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("validation:rules", slug=slug)
    bad = sum(1 for r in results if r.status != "passed")
    level = messages.SUCCESS if not bad else messages.WARNING
    messages.add_message(
        request,
        level,
        f"Pre-validation ran {len(results)} rules: {len(results) - bad} passed, {bad} did not.",
    )
    return redirect("validation:rules", slug=slug)


def _run(uuid) -> Run:
    return get_object_or_404(Run.objects.select_related("plan", "version", "target"), uuid=uuid)


@capability_required("mp.view")
def report_view(request: HttpRequest, uuid) -> HttpResponse:
    ctx = selectors.report_context(_run(uuid))
    ctx["may_reconcile"] = user_may_reconcile(request.user)
    return render(request, "validation/report.html", ctx)


@require_POST
@capability_required("mp.view")
def report_reconcile_view(request: HttpRequest, uuid) -> HttpResponse:
    """Reconcile the run again (roles that may: the service checks); back to the report."""
    run = _run(uuid)
    try:
        run_reconcile_request(run=run, user=request.user)
    except PermissionDeniedError as exc:
        messages.error(request, exc.message)
        return HttpResponse(exc.message, status=403)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("validation:report", uuid=run.uuid)
    messages.success(request, "Reconciliation queued: the report is replaced when it is done.")
    return redirect("validation:report", uuid=run.uuid)


@capability_required("mp.view")
def report_export_view(request: HttpRequest, uuid, fmt: str) -> HttpResponse:
    run = _run(uuid)
    name = f"report-{run.plan.slug}-{str(run.uuid)[:8]}"
    if fmt == "csv":
        return _report_csv(run, name)
    html = render_to_string(
        "validation/report_export.html",
        {**selectors.report_context(run), "inline_css": _app_css()},
        request=request,
    )
    if fmt == "pdf":
        from weasyprint import HTML

        pdf = HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
        response = HttpResponse(pdf, content_type="application/pdf")
    else:
        response = HttpResponse(html, content_type="text/html")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def _app_css() -> str:
    """The app stylesheet, inlined so exported HTML/PDF stand alone (no server to fetch from)."""
    path = finders.find("css/app.css")
    return Path(path).read_text(encoding="utf-8") if path else ""


def _report_csv(run: Run, name: str) -> HttpResponse:
    ctx = selectors.report_context(run)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    out = csv_writer(response)
    out.writerow(["section", "entity", "check", "severity", "status", "expected", "observed"])
    report, history = ctx["report"], ctx["from_before_rollback"]
    if report is not None:  # a superseded report's rows below are history: said first
        was = f"was {report.superseded_verdict}" if report.superseded_verdict else ""
        out.writerow(
            ["verdict", "", "the report", "", report.verdict, was, report.superseded_reason]
        )
    for a in ctx["accounting"]:
        out.writerow(
            [
                "accounting",
                a["entity"],
                "source = loaded+failed+filtered+duplicate",
                "",
                selectors.history_status("balanced" if a["balanced"] else "unbalanced", history),
                a["source"],
                a["accounted"],
            ]
        )
    for entity, d in ctx["key_diffs"].items():
        out.writerow(
            [
                "key reconciliation",
                entity,
                "ledger vs target",
                "",
                selectors.history_status("clean" if d.get("clean") else "differs", history),
                d.get("expected_rows"),
                f"missing {d.get('missing', 0)} changed {d.get('changed', 0)} "
                f"present, not written by this run {d.get('extra', 0)}",
            ]
        )
        for f in d.get("changed_fields", []):
            out.writerow(
                [
                    "changed value",
                    entity,
                    f"{f.get('business_key')} · id {f['key']}",
                    "",
                    f"column {f['column']}",
                    f["intended"],
                    f["stored"],
                ]
            )
    for r in ctx["results"]:
        out.writerow(
            [
                r.rule.phase,
                r.rule.entity,
                r.rule.name,
                r.rule.severity,
                selectors.history_status(r.status, history),
                r.expected,
                r.observed,
            ]
        )
    return response


@capability_required("mp.view")
def uat_page(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    runs = list(selectors.plan_load_runs(plan)[:20])
    wanted = request.GET.get("run")
    run = next((r for r in runs if str(r.uuid) == wanted), runs[0] if runs else None)
    cases = list(plan.uat_cases.all())
    results = {}
    if run is not None:
        for res in (
            UATResult.objects.filter(run=run).select_related("tester").order_by("recorded_at")
        ):
            results.setdefault(res.case_id, []).append(res)
    rows = [(c, results.get(c.pk, [])) for c in cases]
    editing = next((c for c in cases if str(c.uuid) == request.GET.get("edit")), None)
    return render(
        request,
        "validation/uat.html",
        {
            "plan": plan,
            "runs": runs,
            "run": run,
            "rows": rows,
            "editing": editing,
            "outcomes": UATOutcome.choices,
            "coverage": uat_coverage(plan=plan, run=run),
        },
    )


@require_POST
@capability_required("mp.edit_plan")
def uat_case_save_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    case = None
    if request.POST.get("uuid"):
        case = get_object_or_404(UATTestCase, plan=plan, uuid=request.POST["uuid"])
    try:
        uat_case_save(plan=plan, user=request.user, data=request.POST, case=case)
        messages.success(request, "Test case saved.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("validation:uat", slug=slug)


@require_POST
@capability_required("mp.edit_plan")
def uat_case_delete_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    case = get_object_or_404(UATTestCase, plan__slug=slug, uuid=uuid)
    uat_case_delete(case=case, user=request.user)
    messages.success(request, f"Test case “{case.title}” deleted.")
    return redirect("validation:uat", slug=slug)


@require_POST
@capability_required("mp.record_uat")
def uat_result_view(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    case = get_object_or_404(UATTestCase, plan__slug=slug, uuid=uuid)
    run = get_object_or_404(Run, uuid=request.POST.get("run"))
    try:
        uat_result_record(
            case=case,
            run=run,
            user=request.user,
            outcome=request.POST.get("outcome", ""),
            comment=request.POST.get("comment", ""),
        )
        messages.success(request, f"Result recorded for “{case.title}”.")
    except ApplicationError as exc:
        messages.error(request, f"“{case.title}”: {exc.message}")
    return redirect(f"{request.path.rsplit('/cases/', 1)[0]}/?run={run.uuid}")


@capability_required("mp.view")
def signoff_page(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    runs = list(selectors.plan_load_runs(plan)[:20])
    latest = runs[0] if runs else None
    return render(
        request,
        "validation/signoff.html",
        {
            "plan": plan,
            "versions": plan.versions.select_related("created_by")[:10],
            "runs": runs,
            "latest": latest,
            "signoffs": signoffs_with_rollbacks(selectors.signoff_history(plan)),
            "report": getattr(latest, "report", None) if latest else None,
            "uat": uat_coverage(plan=plan, run=latest),
            "decisions": SignOffDecision.choices,
        },
    )


@require_POST
@capability_required("mp.sign_off")
def signoff_decide_view(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    run = get_object_or_404(
        Run.objects.select_related("version"), uuid=request.POST.get("run"), plan=plan
    )
    try:
        signoff_decide(
            plan=plan,
            version=run.version,
            run=run,
            user=request.user,
            decision=request.POST.get("decision", ""),
            reason=request.POST.get("reason", ""),
        )
        messages.success(request, f"Version {run.version.number}: decision recorded.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("validation:signoff", slug=slug)


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@capability_required("mp.view_audit")
def audit_page(request: HttpRequest) -> HttpResponse:
    g = request.GET
    events = selectors.audit_events(
        actor=g.get("actor", ""),
        action=g.get("action", ""),
        object_type=g.get("type", ""),
        text=g.get("q", "").strip(),
        date_from=_date(g.get("from")),
        date_to=_date(g.get("to")),
    )
    if g.get("format") == "csv":
        return _audit_csv(events)
    return render(
        request,
        "validation/audit.html",
        {
            "events": events[:300],
            "actions": AuditAction.choices,
            "f": g,
            **selectors.audit_filter_choices(),
        },
    )


def _audit_csv(events) -> HttpResponse:
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    out = csv_writer(response)
    out.writerow(
        ["at", "actor", "action", "object_type", "object_id", "object", "before", "after", "ip"]
    )
    for e in events.iterator():
        out.writerow(
            [
                e.at.isoformat(),
                e.actor_name,
                e.action,
                e.object_type,
                e.object_id,
                e.object_repr,
                e.before,
                e.after,
                e.ip,
            ]
        )
    return response


@capability_required("mp.view")
def cutover_page(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    cutover = plan.cutovers.first()
    return render(
        request,
        "validation/cutover.html",
        {
            "plan": plan,
            "cutover": cutover,
            "checks": _checks(cutover),
            "final_run": final_run(cutover) if cutover else None,
            "since_signoff": runs_since_signoff(plan),
            "signoff": _with_rollback(last_signoff(plan)),
            "history": plan.cutovers.all()[:10],
        },
    )


def _with_rollback(signoff):  # noqa: ANN001, ANN202
    return signoffs_with_rollbacks([signoff])[0] if signoff else None


def _checks(cutover) -> list:
    """The live checklist of an open cutover; the one recorded at the decision otherwise."""
    if cutover is None:
        return []
    if cutover.status != "open" and cutover.checklist:
        return [CheckItem(**c) for c in cutover.checklist]
    return cutover_checklist(cutover)


CUTOVER_STEPS = ("open", "freeze", "go", "no_go", "rollback")


@require_POST
@capability_required("mp.rollback_run")
def cutover_step_view(request: HttpRequest, slug: str, step: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug)
    if step not in CUTOVER_STEPS:
        raise Http404("No such cutover step.")
    cutover = plan.cutovers.first()
    try:
        if step == "open" or cutover is None:
            cutover_open(plan=plan, user=request.user)
        elif step == "freeze":
            cutover_freeze_confirm(cutover=cutover, user=request.user)
        elif step == "rollback":
            runs = cutover_rollback_request(cutover=cutover, user=request.user)
            messages.success(request, f"Rolling back {len(runs)} run(s), newest first.")
        else:
            cutover_decide(
                cutover=cutover,
                user=request.user,
                decision=step,
                reason=request.POST.get("reason", ""),
            )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("validation:cutover", slug=slug)
