"""Writing a checked document: create a plan, or replace a plan's contents in place; the
import page's check step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from simple_history.utils import bulk_create_with_history

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record

from ..enums import (
    PlanStatus,
)
from ..models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    RuleStep,
    UATTestCase,
    ValidationRule,
)
from ..yaml_check import SchemaProblem, schema_problems, schema_refusal
from .nodes import Path, _parse, _path_text, _Reader
from .sections import _Doc, _read_document

# --------------------------------------------------------------------------- writing


def _bulk(objs: list, model: type, user) -> list:
    return bulk_create_with_history(objs, model, default_user=user) if objs else []


def _write_entities(plan: Plan, doc: _Doc, user) -> None:
    entities = _bulk(
        [EntityMapping(plan=plan, **values) for values, _ in doc.entities], EntityMapping, user
    )
    fields, chains = [], []
    for entity, (_, specs) in zip(entities, doc.entities, strict=True):
        for position, (values, steps) in enumerate(specs):
            fields.append(FieldMapping(entity=entity, position=position, **values))
            chains.append(steps)
    fields = _bulk(fields, FieldMapping, user)
    _bulk(
        [
            RuleStep(field=f, position=i, rule=rule, params=params)
            for f, steps in zip(fields, chains, strict=True)
            for i, (rule, params) in enumerate(steps)
        ],
        RuleStep,
        user,
    )


def _write_children(plan: Plan, doc: _Doc, user) -> None:
    tables = _bulk(
        [LookupTable(plan=plan, **values) for values, _ in doc.lookups], LookupTable, user
    )
    _bulk(
        [
            LookupEntry(table=table, key=k, value=v)
            for table, (_, entries) in zip(tables, doc.lookups, strict=True)
            for k, v in entries.items()
        ],
        LookupEntry,
        user,
    )
    _write_entities(plan, doc, user)
    _bulk([Milestone(plan=plan, **values) for values in doc.milestones], Milestone, user)


def _replace_checks(plan: Plan, rules: list[dict], cases: list[dict]) -> None:
    """Validation rules are matched by name and UAT cases by title, so past results stay."""
    kept = {rule.name: rule for rule in plan.validation_rules.all()}
    for values in rules:
        rule = kept.pop(values["name"], None) or ValidationRule(plan=plan)
        for key, value in values.items():
            setattr(rule, key, value)
        rule.save()
    ValidationRule.objects.filter(pk__in=[rule.pk for rule in kept.values()]).delete()
    old = list(plan.uat_cases.order_by("position", "id"))
    for position, values in enumerate(cases):
        case = next((c for c in old if c.title == values["title"]), None)
        if case is not None:
            old.remove(case)
        case = case or UATTestCase(plan=plan)
        for key, value in {**values, "position": position}.items():
            setattr(case, key, value)
        case.save()
    UATTestCase.objects.filter(pk__in=[case.pk for case in old]).delete()


def _target_plan(doc: _Doc, user, replace: bool, r: _Reader) -> Plan:
    """A new plan, or the existing one emptied of its mappings (versions and runs stay)."""
    plan = Plan.objects.select_for_update().filter(slug=doc.plan["slug"]).first()
    if plan is not None and not replace:
        r.fail(
            ("plan", "slug"),
            f"a plan with slug '{plan.slug}' already exists (import "
            "with replace to overwrite its contents)",
        )
    clash = (
        Plan.objects.filter(name__iexact=doc.plan["name"]).exclude(slug=doc.plan["slug"]).first()
    )
    if clash is not None:
        r.fail(
            ("plan", "name"),
            f"a plan called '{clash.name}' already exists (slug "
            f"'{clash.slug}'); plan names are unique",
        )
    if plan is None:
        plan = Plan(owner=user if getattr(user, "is_authenticated", False) else None)
    else:
        for related in (plan.entities, plan.lookups, plan.milestones):
            related.all().delete()
        plan.status = PlanStatus.DRAFT  # an import is an edit: review and sign-off start again
    for key, value in doc.plan.items():
        setattr(plan, key, value)
    plan.source, plan.target = doc.source, doc.target
    plan._history_user = user if getattr(user, "is_authenticated", False) else None
    plan.save()
    return plan


def _locate(r: _Reader) -> Callable[[Path], tuple[int, int, str]]:
    def locate(path: Path) -> tuple[int, int, str]:
        mark = r.node(path).start_mark
        return mark.line + 1, mark.column + 1, _path_text(path)

    return locate


@dataclass(frozen=True)
class ImportCheck:
    """What an import would create, and the names the live schemas do not have."""

    name: str
    slug: str
    exists: bool
    counts: dict[str, int]
    problems: list[SchemaProblem]


def plan_import_check(*, text: str) -> ImportCheck:
    """Read and check a v1 document without writing (the import page's validate step).
    Read-only; raises ApplicationError with line and column for a document that cannot be
    imported at all; unknown tables / columns come back in ``problems``."""
    data, root = _parse(text)
    r = _Reader(root)
    doc = _read_document(data, r)
    counts = {
        "entities": len(doc.entities),
        "fields": sum(len(f) for _, f in doc.entities),
        "lookups": len(doc.lookups),
        "validation rules": len(doc.validation_rules),
        "UAT cases": len(doc.uat_cases),
        "milestones": len(doc.milestones),
    }
    return ImportCheck(
        doc.plan["name"],
        doc.plan["slug"],
        Plan.objects.filter(slug=doc.plan["slug"]).exists(),
        counts,
        schema_problems(doc, _locate(r)),
    )


@transaction.atomic
def plan_import_yaml(
    *, text: str, user, replace: bool = False, allow_unknown_schema: bool = False
) -> Plan:
    """Create a plan from v1 YAML or, with ``replace``, overwrite an existing plan's contents in
    place (keeping its versions and runs). Tables and columns are checked against the systems'
    live schemas unless ``allow_unknown_schema`` (a plan for a schema not yet created).
    Transactional, all or nothing; raises PermissionDeniedError, or ApplicationError giving
    line, column, path and reason."""
    from ..services_edit import EDIT, require_capability

    require_capability(user, EDIT)
    data, root = _parse(text)
    r = _Reader(root)
    doc = _read_document(data, r)
    if not allow_unknown_schema:
        problems = schema_problems(doc, _locate(r))
        if problems:
            raise schema_refusal(problems)
    existed = Plan.objects.filter(slug=doc.plan["slug"]).exists()
    plan = _target_plan(doc, user, replace, r)
    actor = user if getattr(user, "is_authenticated", False) else None
    _write_children(plan, doc, actor)
    _replace_checks(plan, doc.validation_rules, doc.uat_cases)
    audit_record(
        action=AuditAction.IMPORT,
        actor=user,
        obj=plan,
        after={
            "replaced": existed,
            "entities": len(doc.entities),
            "lookups": len(doc.lookups),
            "fields": sum(len(fields) for _, fields in doc.entities),
            "validation_rules": len(doc.validation_rules),
            "uat_cases": len(doc.uat_cases),
            "milestones": len(doc.milestones),
        },
    )
    return plan
