"""Writes of the validation app: rules, pre-validation, the post-run report (and its hooks)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction

from mappings.models import Plan
from mappings.services import plan_snapshot_build
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.connections import connection_spec, connector_for
from runs.engine.connectors import connect
from runs.engine.snapshot import PlanSnapshot
from runs.enums import RunMode, RunStatus
from runs.models import Run
from runs.services.state import run_entities, run_snapshot

from .audit import audit_record
from .checks import COLUMN_SCAN_KINDS, Outcome, column_checks, pre_check, rule_params_clean
from .enums import (
    PRE_KINDS,
    AuditAction,
    ResultStatus,
    Severity,
    ValidationKind,
    ValidationPhase,
)
from .models import ValidationResult, ValidationRule
from .report_build import run_report_build
from .report_history import SYSTEM
from .results import rule_error, rule_result
from .signoff import signoffs_void

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)
RULE_FIELDS = ("name", "kind", "entity", "column", "params", "severity", "enabled")


def _rule_state(rule: ValidationRule) -> dict[str, Any]:
    return {f: getattr(rule, f) for f in RULE_FIELDS}


def validation_rule_save(
    *, plan: Plan, user, data: dict[str, Any], rule: ValidationRule | None = None
) -> ValidationRule:
    """Create or update a rule after checking its kind, entity and parameters. Transactional;
    raises PermissionDeniedError or ApplicationError (with the offending field)."""
    if not user.has_perm("mp.edit_plan"):
        raise PermissionDeniedError("Your role does not allow editing validation rules.")
    kind = data.get("kind", "")
    if kind not in ValidationKind.values:
        raise ApplicationError(f"Unknown check “{kind}”.", field="kind")
    if not plan.entities.filter(name=data.get("entity", "")).exists():
        raise ApplicationError(f"The plan has no entity “{data.get('entity')}”.", field="entity")
    name = str(data.get("name", "")).strip()
    if not name:
        raise ApplicationError("Give the rule a name.", field="name")
    clash = plan.validation_rules.filter(name=name).exclude(pk=getattr(rule, "pk", None))
    if clash.exists():
        raise ApplicationError(f"A rule called “{name}” already exists.", field="name")
    column = str(data.get("column", "") or "").strip()
    if column:
        _check_column(plan, data["entity"], kind, column)
    params = rule_params_clean(kind=kind, column=column, params=dict(data.get("params") or {}))
    severity = data.get("severity", Severity.BLOCKING)
    if severity not in Severity.values:
        raise ApplicationError(f"Unknown severity “{severity}”.", field="severity")
    before = _rule_state(rule) if rule else None
    with transaction.atomic():
        rule = rule or ValidationRule(plan=plan)
        rule.name, rule.kind, rule.entity, rule.column = name, kind, data["entity"], column
        rule.params, rule.severity = params, severity
        rule.phase = ValidationPhase.PRE if kind in PRE_KINDS else ValidationPhase.POST
        rule.enabled = bool(data.get("enabled", True))
        rule.save()
        audit_record(
            action=AuditAction.UPDATE if before else AuditAction.CREATE,
            actor=user,
            obj=rule,
            before=before,
            after=_rule_state(rule) | {"plan": plan.pk},
        )
        signoffs_void(
            plan_id=plan.pk, reason=f"validation rule “{rule.name}” edited by {user.username}"
        )
    return rule


def _check_column(plan: Plan, entity_name: str, kind: str, column: str) -> None:
    """Refuse a column the entity's tables do not have (a pre-check reads the source table,
    a post-check the source or target table); skipped when a schema cannot be read."""
    from mappings.schema import system_table

    entity = plan.entities.get(name=entity_name)
    sides = [(plan.source, entity.source_table)]
    if kind not in PRE_KINDS:
        sides.append((plan.target, entity.target_table))
    names: set[str] = set()
    for system, table in sides:
        try:
            names |= set(system_table(system, table).column_names)
        except ApplicationError:
            return
    if column not in names:
        tables = " or ".join(f"“{t}”" for _, t in sides)
        raise ApplicationError(
            f"Column “{column}” does not exist in {tables}: a check on it would block every run.",
            field="column",
        )


def validation_rule_delete(*, rule: ValidationRule, user) -> None:
    """Delete a rule (its results go with it). Raises PermissionDeniedError."""
    if not user.has_perm("mp.edit_plan"):
        raise PermissionDeniedError("Your role does not allow editing validation rules.")
    with transaction.atomic():
        audit_record(
            action=AuditAction.DELETE,
            actor=user,
            obj=rule,
            before=_rule_state(rule) | {"plan": rule.plan_id},
        )
        signoffs_void(
            plan_id=rule.plan_id, reason=f"validation rule “{rule.name}” deleted by {user.username}"
        )
        rule.delete()


def prevalidation_execute(
    *,
    plan: Plan,
    snapshot: PlanSnapshot | None = None,
    run: Run | None = None,
    entities: list[str] | None = None,
    ranges: dict | None = None,
    counts: dict[str, int] | None = None,
) -> list[ValidationResult]:
    """Run the plan's enabled pre-migration rules on the source and store their results: new
    ones each time, but a run keeps one set (a run prepared again replaces its earlier pre-run
    results); a rule that cannot run is stored as an error. ``ranges`` / ``counts``: each
    entity's whole-table key ranges / row count, read already (a run's planning)."""
    snapshot = snapshot or plan_snapshot_build(plan=plan)
    source = connector_for(plan.source)
    rules = [
        r
        for r in plan.validation_rules.filter(phase=ValidationPhase.PRE, enabled=True)
        if entities is None or r.entity in entities
    ]
    ranges = dict(ranges or {})  # entity -> key ranges of its whole table (else planned here)
    helper = None
    if any(r.kind in COLUMN_SCAN_KINDS for r in rules):  # a second connection for the scans
        spec = connection_spec(plan.source)
        helper = lambda: connect(*spec)  # noqa: E731 - opened (and closed) by the scan's thread
    scanned = _column_checks_together(rules, snapshot, source, ranges, helper)
    results = []
    for rule in rules:
        try:
            outcome = scanned.get(rule.pk) or pre_check(
                kind=rule.kind,
                params=rule.params,
                column=rule.column,
                entity=snapshot.entity(rule.entity),
                source=source,
                ranges=ranges,
                counts=counts,
            )
            results.append(rule_result(rule, run, outcome))
        except Exception as exc:  # noqa: BLE001 - a broken rule is reported, not raised
            results.append(rule_error(rule, run, exc))
    with transaction.atomic():
        if run is not None:
            ValidationResult.objects.filter(run=run, rule__phase=ValidationPhase.PRE).delete()
        return ValidationResult.objects.bulk_create(results)


def _column_checks_together(
    rules: list[ValidationRule], snapshot: PlanSnapshot, source, ranges: dict, helper=None
) -> dict[int, Outcome]:
    """Outcomes of the column-scanning rules, one table scan per entity (``helper``: opens a
    second connector that reads every other chunk at once); an entity whose scan fails is
    left out (its rules then run one by one, so an error names its own rule)."""
    groups: dict[str, list[ValidationRule]] = {}
    for rule in rules:
        if rule.kind in COLUMN_SCAN_KINDS:
            groups.setdefault(rule.entity, []).append(rule)
    out: dict[int, Outcome] = {}
    for name, group in groups.items():
        try:
            outcomes = column_checks(
                [(r.kind, r.params, r.column) for r in group],
                entity=snapshot.entity(name),
                source=source,
                ranges=ranges,
                helper=helper,
            )
        except Exception:  # noqa: BLE001, S112 - each rule runs alone and reports its error
            continue
        out.update(zip((r.pk for r in group), outcomes, strict=True))
    return out


def run_prevalidate(run: Run) -> str | None:
    """before_run hook: pre-validation of the run's entities; a failed or broken blocking rule
    returns the message that stops the run before anything is written."""
    names = [e.name for e in run_entities(run)]
    from .column_scan import CHUNK_ROWS  # pyarrow: loaded by the workers only

    snapshot = run_snapshot(run)
    # The whole-table key ranges the run's planning just computed (``source_ranges``) serve the
    # column scans too when its chunks are no larger than theirs (memory): one window query over
    # the source less (0.5 s at 1 M rows).
    whole = getattr(run, "source_ranges", {})  # entities planned over their whole table
    planned = whole if snapshot.batch_size <= CHUNK_ROWS else {}
    # ... whose row count the planning read too (a row count rule reads none of its own:
    # one count(*) less, 0.85 s at 10 M rows)
    counts = {name: run.entity_totals[name] for name in whole if name in run.entity_totals}
    results = prevalidation_execute(
        plan=run.plan, snapshot=snapshot, run=run, entities=names, ranges=planned, counts=counts
    )
    blocking = [
        r
        for r in results
        if r.rule.severity == Severity.BLOCKING
        and r.status in (ResultStatus.FAILED, ResultStatus.ERROR)
    ]
    if not blocking:
        return None
    return "pre-validation failed: " + "; ".join(
        f"{r.rule.name} (expected {r.expected or '—'}, observed {r.observed})" for r in blocking
    )


def run_reconcile_after(run: Run) -> None:
    """after_run hook: reconcile load/delta runs that succeeded or failed; a finished dry run
    gets its verdict (would a load go through?) without reconciliation."""
    if run.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        return
    if run.mode == RunMode.DRY_RUN:
        from .dry_report import dry_run_report_build

        dry_run_report_build(run=run)
        return
    if not run.batches.exists():
        return  # stopped before writing anything (e.g. by pre-validation)
    run_report_build(run=run)


def _reconcilable(run: Run) -> bool:
    return (
        run.mode != RunMode.DRY_RUN
        and run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
        and run.batches.exists()
    )


def run_reconcile_request(*, run: Run, user, reason: str = "") -> None:
    """Reconcile a run again on demand (on a worker, after the caller's transaction commits).
    Raises PermissionDeniedError (role) or ApplicationError (a run that cannot be)."""
    if user is not None and not user_may_reconcile(user):
        raise PermissionDeniedError("Your role does not allow reconciling a run.")
    if not _reconcilable(run):
        raise ApplicationError(
            f"Run {run.uuid} is a {run.get_mode_display().lower()} run with status "
            f"{run.status}: only a finished load or delta run that wrote batches is reconciled."
        )
    who = getattr(user, "username", "") or SYSTEM
    _reconcile_later(run, reason or f"on demand by {who}", who)
    audit_record(
        action=AuditAction.UPDATE, actor=user, obj=run, after={"reconcile": reason or "on demand"}
    )


def user_may_reconcile(user) -> bool:
    """Roles that may ask for a new reconciliation: those who work the queue, control runs
    or sign off (not read-only viewers)."""
    return any(user.has_perm(p) for p in ("mp.work_queue", "mp.control_run", "mp.sign_off"))


def _reconcile_later(run: Run, reason: str, who: str) -> None:
    from .tasks import run_report_task

    pk = run.pk
    transaction.on_commit(lambda: run_report_task.delay(pk, reason, who))


def run_reconcile_after_queue(run: Run, who: str) -> None:
    """after_queue_work hook: queue work (re-process) wrote to a run's target: reconcile it
    again so the report never describes an older state."""
    run.refresh_from_db()
    if _reconcilable(run):
        _reconcile_later(run, f"after re-processing failed records by {who}", who)


def hooks_install() -> None:
    """Plug pre-validation and reconciliation into every run (idempotent; AppConfig.ready)."""
    from runs.services.hooks import (
        register_after_queue_work,
        register_after_run,
        register_approvals,
        register_before_run,
        register_rollback_started,
        register_run_verdict,
    )

    from .report_supersede import reports_supersede
    from .selectors import run_verdict
    from .signoff import signed_off_versions

    register_before_run(run_prevalidate)
    register_after_run(run_reconcile_after)
    register_after_queue_work(run_reconcile_after_queue)
    register_approvals(signed_off_versions)
    register_run_verdict(run_verdict)
    register_rollback_started(reports_supersede)
