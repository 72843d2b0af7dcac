"""Cutover of a plan: freeze source writes, drain the final delta or sync, reconcile, check
the validation report and the UAT sign-off, decide go / no-go (audited), measure downtime,
and roll back everything written since the last sign-off in one request."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import transaction
from django.utils import timezone

from mappings.models import Plan
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.enums import FINISHED_RUN_STATUSES, RunMode, RunStatus
from runs.models import Run

from .audit import audit_record
from .enums import AuditAction, CutoverStatus, SignOffDecision, Verdict
from .models import Cutover, RunReport, SignOff
from .signoff_rollback import signoffs_rolled_back_since

OPERATE = "mp.rollback_run"  # operators (and admins) run cutovers
WRITING_MODES = (RunMode.LOAD, RunMode.DELTA, RunMode.SYNC)


@dataclass(frozen=True)
class CheckItem:
    """One line of the cutover checklist."""

    key: str
    label: str
    ok: bool
    detail: str


def _need(user, what: str) -> None:
    if user is not None and not user.has_perm(OPERATE):
        raise PermissionDeniedError(f"Only an operator may {what}.")


def last_signoff(plan: Plan) -> SignOff | None:
    """The plan's newest approved, not voided sign-off. Read-only."""
    return (
        SignOff.objects.filter(plan=plan, decision=SignOffDecision.APPROVED, voided_at=None)
        .select_related("version", "run")
        .order_by("-created_at")
        .first()
    )


def _rolled_back_words(signoff: SignOff) -> str:
    """ " Its run #N rolled back since (…)." when it was, else "" (the sign-off still holds)."""
    note = signoffs_rolled_back_since([signoff]).get(signoff.pk)
    return f" Its {note.text}." if note else ""


def final_run(cutover: Cutover) -> Run | None:
    """The delta or sync run that finished after the freeze (the last one), else None."""
    if cutover.frozen_at is None:
        return None
    return (
        Run.objects.filter(
            plan=cutover.plan,
            mode__in=[RunMode.DELTA, RunMode.SYNC],
            status=RunStatus.SUCCEEDED,
            finished_at__gte=cutover.frozen_at,
        )
        .select_related("version")
        .order_by("-finished_at")
        .first()
    )


def _drained(run: Run | None) -> tuple[bool, str]:
    if run is None:
        return False, "No delta or sync run has finished since the freeze."
    if run.mode == RunMode.SYNC and not run.cdc.get("drained"):
        return False, f"Sync {str(run.uuid)[:8]} ended without draining."
    what = "sync drained to lag 0" if run.mode == RunMode.SYNC else "delta run succeeded"
    return True, f"{what.capitalize()}: run {str(run.uuid)[:8]} at {run.finished_at:%H:%M:%S}."


def _report(run: Run | None) -> RunReport | None:
    return RunReport.objects.filter(run=run).first() if run is not None else None


def _report_void(report: RunReport) -> str:
    """Why a report counts for nothing any more (superseded or cancelled), else ""."""
    if report.verdict == Verdict.SUPERSEDED:
        was = report.get_superseded_verdict_display()
        return f"Report {report.superseded_reason} (it was: {was})."
    if report.verdict == Verdict.CANCELLED:
        return f"Report cancelled, {report.data.get('cancelled', {}).get('message', '')}."
    return ""


def cutover_checklist(cutover: Cutover) -> list[CheckItem]:
    """The five checks, computed from the database now. Read-only."""
    run = final_run(cutover)
    drained, drained_detail = _drained(run)
    report = _report(run)
    diffs = (report.data.get("key_diffs") or {}) if report else {}
    # a superseded report's diffs are history: the target no longer holds what they proved
    clean = bool(report) and report.passes and all(d.get("clean", True) for d in diffs.values())
    signoff = last_signoff(cutover.plan)
    version_ok = signoff is not None and run is not None and signoff.version_id == run.version_id
    frozen = cutover.frozen_at is not None
    return [
        CheckItem(
            "freeze",
            "Source writes frozen (operator confirms)",
            frozen,
            f"Confirmed at {cutover.frozen_at:%H:%M:%S}." if frozen else "Not confirmed.",
        ),
        CheckItem("drained", "Final delta or CDC drained to lag 0", drained, drained_detail),
        CheckItem(
            "reconciled",
            "Full key-level reconciliation of the final run",
            clean,
            (
                f"{len(diffs)} entities, every key accounted for."
                if clean
                else "No reconciliation report yet."
                if not report
                else _report_void(report)
                if _report_void(report)
                else "Key differences found: open the report."
            ),
        ),
        CheckItem(
            "report",
            "Validation report passes",
            bool(report) and report.passes,
            (_report_void(report) or f"Verdict: {report.get_verdict_display()}.")
            if report
            else "No report yet.",
        ),
        CheckItem(
            "signoff",
            "UAT sign-off still valid for the version that ran",
            version_ok,
            (
                "No valid sign-off."
                if signoff is None
                else (
                    f"Version {signoff.version.number} approved, not voided."
                    if version_ok
                    else f"Version {signoff.version.number} is signed off; no final run yet."
                    if run is None
                    else f"Sign-off is for version {signoff.version.number}, the final run used "
                    f"{run.version.number}."
                )
                + _rolled_back_words(signoff)
            ),
        ),
    ]


@transaction.atomic
def cutover_open(*, plan: Plan, user) -> Cutover:
    """Start a cutover (one open at a time per plan). Transactional; PermissionDeniedError,
    ApplicationError (one is open already)."""
    _need(user, "open a cutover")
    if Cutover.objects.select_for_update().filter(plan=plan, status=CutoverStatus.OPEN).exists():
        raise ApplicationError("A cutover of this plan is already open.")
    cutover = Cutover.objects.create(plan=plan, opened_by=_user(user))
    audit_record(action=AuditAction.CUTOVER, actor=user, obj=cutover, after={"step": "open"})
    return cutover


def _open(cutover: Cutover) -> Cutover:
    cutover = Cutover.objects.select_for_update().get(pk=cutover.pk)
    if cutover.status != CutoverStatus.OPEN:
        raise ApplicationError(f"This cutover is {cutover.get_status_display().lower()}.")
    return cutover


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


@transaction.atomic
def cutover_freeze_confirm(*, cutover: Cutover, user) -> Cutover:
    """Record that source writes are frozen: downtime starts now. Transactional;
    PermissionDeniedError, ApplicationError (not open, frozen already)."""
    _need(user, "confirm the freeze")
    cutover = _open(cutover)
    if cutover.frozen_at is not None:
        raise ApplicationError("The freeze was confirmed already.")
    cutover.frozen_at, cutover.frozen_by = timezone.now(), _user(user)
    cutover.save(update_fields=["frozen_at", "frozen_by"])
    audit_record(
        action=AuditAction.CUTOVER,
        actor=user,
        obj=cutover,
        after={"step": "freeze", "at": cutover.frozen_at.isoformat()},
    )
    return cutover


@transaction.atomic
def cutover_decide(*, cutover: Cutover, user, decision: str, reason: str = "") -> Cutover:
    """Go (every check passes; downtime = freeze to now) or no-go (needs a reason), recorded
    with the checklist in the audit log. Transactional; PermissionDeniedError,
    ApplicationError naming the failing checks."""
    _need(user, "decide go / no-go")
    cutover = _open(cutover)
    checks = cutover_checklist(cutover)
    if decision == CutoverStatus.GO:
        failing = [c.label for c in checks if not c.ok]
        if failing:
            raise ApplicationError("Go refused, checks not passed: " + "; ".join(failing) + ".")
    elif decision == CutoverStatus.NO_GO:
        if not reason.strip():
            raise ApplicationError("A no-go needs a reason.", field="reason")
    else:
        raise ApplicationError(f"Unknown decision “{decision}” (go or no_go).", field="decision")
    now = timezone.now()
    cutover.status, cutover.decided_at, cutover.decided_by = decision, now, _user(user)
    cutover.reason, cutover.checklist = reason.strip(), [asdict(c) for c in checks]
    if decision == CutoverStatus.GO:
        cutover.downtime_seconds = int((now - cutover.frozen_at).total_seconds())
    cutover.save()
    audit_record(
        action=AuditAction.CUTOVER,
        actor=user,
        obj=cutover,
        after={
            "step": "decision",
            "decision": decision,
            "reason": cutover.reason,
            "downtime_seconds": cutover.downtime_seconds,
            "checklist": cutover.checklist,
        },
    )
    return cutover


def runs_since_signoff(plan: Plan) -> list[Run]:
    """Writing runs of the plan created after its last valid sign-off (all of them when there
    is none), not rolled back, newest first. Read-only."""
    signoff = last_signoff(plan)
    runs = Run.objects.filter(plan=plan, mode__in=WRITING_MODES).exclude(
        status__in=[RunStatus.ROLLED_BACK, RunStatus.ROLLING_BACK]
    )
    if signoff is not None:
        runs = runs.filter(created_at__gt=signoff.created_at)
    return list(runs.order_by("-created_at"))


def cutover_rollback_request(*, cutover: Cutover, user) -> list[Run]:
    """One click: roll back every run written since the last sign-off, newest first, in one
    background task. PermissionDeniedError; ApplicationError naming a run still active."""
    _need(user, "roll a cutover back")
    runs = runs_since_signoff(cutover.plan)
    active = [r for r in runs if r.status not in FINISHED_RUN_STATUSES]
    if active:
        names = ", ".join(f"{r.get_mode_display()} {str(r.uuid)[:8]}" for r in active)
        raise ApplicationError(f"Stop or cancel these runs first: {names}.")
    if not runs:
        raise ApplicationError("Nothing was written since the last sign-off.")
    from .tasks import cutover_rollback_task

    with transaction.atomic():
        audit_record(
            action=AuditAction.CUTOVER,
            actor=user,
            obj=cutover,
            after={"step": "rollback", "runs": [str(r.uuid) for r in runs]},
        )
        user_id = getattr(_user(user), "pk", None)
        transaction.on_commit(lambda: cutover_rollback_task.delay(cutover.pk, user_id))
    return runs


def cutover_rollback_execute(*, cutover_id: int, user=None) -> Cutover:
    """Roll the runs since the last sign-off back one after the other, newest first, each
    verified against its pre-run checksums. Idempotent (rolled-back runs are skipped)."""
    from runs.services.rollback import run_rollback_execute, run_rollback_request

    cutover = Cutover.objects.select_related("plan").get(pk=cutover_id)
    done = list(cutover.rolled_back_runs)
    for run in runs_since_signoff(cutover.plan):
        rollback = run_rollback_request(
            run=run, user=user, reason="cutover rollback", enqueue=False
        )
        rollback = run_rollback_execute(rollback_id=rollback.pk)
        done.append({"run": str(run.uuid), "mode": run.mode, "verdict": rollback.status})
    Cutover.objects.filter(pk=cutover.pk).update(
        rolled_back_runs=done, status=CutoverStatus.ROLLED_BACK
    )
    cutover.refresh_from_db()
    return cutover
