"""UAT test cases and results, and the four-eyes sign-off of a plan version (and its voiding)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from mappings.enums import PlanStatus
from mappings.models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    PlanVersion,
    RuleStep,
    System,
)
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.enums import RunMode, RunStatus
from runs.models import Run

from .audit import audit_record
from .enums import AuditAction, SignOffDecision, UATOutcome, Verdict
from .models import (
    AuditEvent,
    RunReport,
    SignOff,
    UATResult,
    UATTestCase,
    ValidationResult,
    ValidationRule,
)


def _need(user, capability: str, what: str) -> None:
    if not user.has_perm(capability):
        raise PermissionDeniedError(f"Your role does not allow {what}.")


def uat_case_save(
    *, plan: Plan, user, data: dict[str, Any], case: UATTestCase | None = None
) -> UATTestCase:
    """Create or update a UAT test case. Raises PermissionDeniedError / ApplicationError."""
    _need(user, "mp.edit_plan", "editing UAT test cases")
    values = {k: str(data.get(k, "") or "").strip() for k in ("title", "steps", "expected_result")}
    for name, label in (
        ("title", "a title"),
        ("steps", "the steps"),
        ("expected_result", "the expected result"),
    ):
        if not values[name]:
            raise ApplicationError(f"Give {label}.", field=name)
    before = {k: getattr(case, k) for k in values} if case else None
    with transaction.atomic():
        if case is None:
            case = UATTestCase(plan=plan, position=plan.uat_cases.count())
        for k, v in values.items():
            setattr(case, k, v)
        case.save()
        audit_record(
            action=AuditAction.UPDATE if before else AuditAction.CREATE,
            actor=user,
            obj=case,
            before=before,
            after=values,
        )
    return case


def uat_case_delete(*, case: UATTestCase, user) -> None:
    """Delete a test case and its results. Raises PermissionDeniedError."""
    _need(user, "mp.edit_plan", "editing UAT test cases")
    with transaction.atomic():
        audit_record(action=AuditAction.DELETE, actor=user, obj=case, before={"title": case.title})
        case.delete()


def uat_result_record(
    *, case: UATTestCase, run: Run, user, outcome: str, comment: str = ""
) -> UATResult:
    """Record (or replace) the tester's outcome for a case on a run. Transactional; raises
    ApplicationError when fail/blocked has no comment or the run is of another plan."""
    _need(user, "mp.record_uat", "recording UAT results")
    if outcome not in UATOutcome.values:
        raise ApplicationError(f"Unknown outcome “{outcome}”.", field="outcome")
    if run.plan_id != case.plan_id:
        raise ApplicationError("That run belongs to another plan.", field="run")
    comment = comment.strip()
    if outcome != UATOutcome.PASS and not comment:
        raise ApplicationError(
            f"Say what went wrong: a “{UATOutcome(outcome).label}” result needs a comment.",
            field="comment",
        )
    try:
        with transaction.atomic():
            result, _ = UATResult.objects.update_or_create(
                case=case, run=run, tester=user, defaults={"outcome": outcome, "comment": comment}
            )
    except IntegrityError as exc:  # the database enforces the same rule
        raise ApplicationError(
            "A failed or blocked result needs a comment.", field="comment"
        ) from exc
    audit_record(
        action=AuditAction.UPDATE,
        actor=user,
        obj=case,
        after={"run": str(run.uuid), "outcome": outcome, "comment": comment},
    )
    return result


def uat_coverage(*, plan: Plan, run: Run | None) -> dict[str, int]:
    """Cases, cases with a result on the run, and cases whose latest result passes/fails/blocks."""
    cases = list(plan.uat_cases.values_list("pk", flat=True))
    latest: dict[int, str] = {}
    if run is not None:
        for case_id, outcome in (
            UATResult.objects.filter(run=run, case_id__in=cases)
            .order_by("recorded_at")
            .values_list("case_id", "outcome")
        ):
            latest[case_id] = outcome
    counts = {o: sum(1 for v in latest.values() if v == o) for o in UATOutcome.values}
    return {
        "cases": len(cases),
        "with_result": len(latest),
        "passing": counts["pass"],
        "failing": counts["fail"],
        "blocked": counts["blocked"],
        "untested": len(cases) - len(latest),
    }


# ---------------------------------------------------------------- four eyes


def _history_ids(model, **filters) -> list[int]:
    return list(model.history.filter(**filters).values_list("id", flat=True).distinct())


def version_authors(version: PlanVersion) -> set[int]:
    """User ids who edited the plan (any mapping model) up to the version, or created it, or
    ever edited its systems or validation rules."""
    plan_id, until = version.plan_id, version.created_at
    entities = _history_ids(EntityMapping, plan_id=plan_id)
    fields = _history_ids(FieldMapping, entity_id__in=entities)
    lookups = _history_ids(LookupTable, plan_id=plan_id)
    scopes = [
        (Plan, {"id": plan_id}),
        (Milestone, {"plan_id": plan_id}),
        (EntityMapping, {"plan_id": plan_id}),
        (FieldMapping, {"entity_id__in": entities}),
        (RuleStep, {"field_id__in": fields}),
        (LookupTable, {"plan_id": plan_id}),
        (LookupEntry, {"table_id__in": lookups}),
    ]
    authors = {version.created_by_id} if version.created_by_id else set()
    for model, scope in scopes:
        authors |= set(
            model.history.filter(history_date__lte=until, **scope)
            .exclude(history_user__isnull=True)
            .values_list("history_user_id", flat=True)
            .distinct()
        )
    return authors | _audited_authors(version)


def _audited_authors(version: PlanVersion) -> set[int]:
    """Who ever edited what the plan's runs also depend on: its systems and validation rules."""
    plan = version.plan
    systems = [
        str(u)
        for u in System.objects.filter(pk__in=[plan.source_id, plan.target_id]).values_list(
            "uuid", flat=True
        )
    ]
    rules = [
        str(u) for u in ValidationRule.objects.filter(plan=plan).values_list("uuid", flat=True)
    ]
    scope = (
        Q(object_type="mappings.System", object_id__in=systems)
        | Q(object_type="validation.ValidationRule", object_id__in=rules)
        | Q(object_type="validation.ValidationRule", before__plan=plan.pk)
    )
    # Not bounded by the version's time: a later edit of a system or check changes what the
    # version's runs do, so its author may not approve them either.
    return set(
        AuditEvent.objects.filter(scope, actor__isnull=False)
        .values_list("actor_id", flat=True)
        .distinct()
    )


def report_freeze(run: Run) -> dict[str, Any]:
    """A self-contained copy of the run's report (checks, accounting, diffs, UAT) for a sign-off."""
    report = RunReport.objects.filter(run=run).first()
    checks = [
        {
            "rule": r.rule.name,
            "kind": r.rule.kind,
            "entity": r.rule.entity,
            "severity": r.rule.severity,
            "status": r.status,
            "expected": r.expected,
            "observed": r.observed,
        }
        for r in ValidationResult.objects.filter(run=run).select_related("rule")
    ]
    return {
        "run": str(run.uuid),
        "mode": run.mode,
        "status": run.status,
        "counters": {
            "extracted": run.extracted,
            "loaded": run.loaded,
            "failed": run.failed,
            "filtered": run.filtered,
            "duplicates": run.duplicates,
        },
        "verdict": report.verdict if report else None,
        "report": report.data if report else {},
        "checks": checks,
        "uat": uat_coverage(plan=run.plan, run=run),
        "frozen_at": timezone.now().isoformat(),
    }


def signoff_concerns(run: Run | None) -> list[str]:
    """What speaks against approving a run's report: failing/blocked UAT cases, a rollback."""
    if run is None:
        return []
    concerns = []
    coverage = uat_coverage(plan=run.plan, run=run)
    if coverage["failing"] or coverage["blocked"]:
        concerns.append(
            f"{coverage['failing']} failing and {coverage['blocked']} blocked UAT case(s)"
        )
    if run.status in (RunStatus.ROLLED_BACK, RunStatus.ROLLING_BACK):
        concerns.append(f"the run being {run.get_status_display().lower()}")
    else:  # a later run's rollback chain (stopped before this run) supersedes its report too
        report = RunReport.objects.filter(run=run, verdict=Verdict.SUPERSEDED).first()
        if report is not None:
            concerns.append(f"its report {report.superseded_reason}")
    return concerns


def _check_signoff(
    *, plan: Plan, version: PlanVersion, run: Run | None, user, decision: str, reason: str
) -> None:
    _need(user, "mp.sign_off", "signing plans off")
    if decision not in SignOffDecision.values:
        raise ApplicationError(f"Unknown decision “{decision}”.", field="decision")
    if version.plan_id != plan.pk:
        raise ApplicationError("That version belongs to another plan.", field="version")
    if decision == SignOffDecision.REJECTED and not reason.strip():
        raise ApplicationError("Give the reason for the rejection.", field="reason")
    wrong_run = run is None or run.version_id != version.pk or run.mode == RunMode.DRY_RUN
    if decision == SignOffDecision.APPROVED and wrong_run:
        raise ApplicationError(
            f"Choose a load run of version {version.number} whose report you approve.", field="run"
        )
    if decision == SignOffDecision.APPROVED:
        concerns = signoff_concerns(run)
        if concerns and not reason.strip():
            raise ApplicationError(
                f"Signing off despite {' and '.join(concerns)} needs an explicit override "
                "reason: write it in the reason field (it is recorded with the sign-off).",
                field="reason",
                extra={"concerns": concerns},
            )
    if user.pk in version_authors(version):
        raise ApplicationError(
            f"Four eyes: you edited this plan (or froze version {version.number}), so you "
            "cannot sign it off. Another approver must review it.",
            field="approver",
        )


def signoff_decide(
    *, plan: Plan, version: PlanVersion, run: Run | None, user, decision: str, reason: str = ""
) -> SignOff:
    """Approve or reject a plan version, bound to a run and a frozen copy of its report.
    Transactional; raises PermissionDeniedError or ApplicationError (four eyes, bad input)."""
    _check_signoff(plan=plan, version=version, run=run, user=user, decision=decision, reason=reason)
    with transaction.atomic():
        signoff = SignOff.objects.create(
            plan=plan,
            version=version,
            run=run,
            approver=user,
            decision=decision,
            reason=reason.strip(),
            report_snapshot=report_freeze(run) if run else {},
        )
        status = PlanStatus.SIGNED_OFF if decision == SignOffDecision.APPROVED else PlanStatus.DRAFT
        Plan.objects.filter(pk=plan.pk).update(status=status)  # update(): no "edit" signal
        audit_record(
            action=AuditAction.SIGN_OFF,
            actor=user,
            obj=signoff,
            after={
                "decision": decision,
                "version": version.number,
                "reason": reason.strip(),
                "run": str(run.uuid) if run else None,
                "override": signoff_concerns(run) if decision == SignOffDecision.APPROVED else [],
            },
        )
    return signoff


def signed_off_versions(*, plan: Plan, valid: bool = True) -> QuerySet[PlanVersion]:
    """The plan's versions with an approved sign-off (``valid``: one not voided since): what
    the production gate in ``runs`` asks through its hook. Read-only."""
    signoffs = SignOff.objects.filter(plan=plan, decision=SignOffDecision.APPROVED)
    if valid:
        signoffs = signoffs.filter(voided_at__isnull=True)
    return PlanVersion.objects.filter(pk__in=signoffs.values("version_id"))


def signoffs_void(*, plan_id: int, reason: str) -> int:
    """Void the plan's valid sign-offs and return it to draft (an edit happened). Idempotent."""
    now = timezone.now()
    voided = SignOff.objects.filter(
        plan_id=plan_id, decision=SignOffDecision.APPROVED, voided_at__isnull=True
    ).update(voided_at=now, voided_reason=reason[:255])
    if voided:
        Plan.objects.filter(pk=plan_id, status=PlanStatus.SIGNED_OFF).update(
            status=PlanStatus.DRAFT
        )
        audit_record(
            action=AuditAction.SIGN_OFF,
            obj=Plan.objects.filter(pk=plan_id).first(),
            after={"voided": voided, "reason": reason[:255]},
        )
    return voided
