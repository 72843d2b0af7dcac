"""Every page and endpoint refuses a logged-in user without a role (server-side checks)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from mappings.models import FileUpload, PlanVersion
from runs.models import Batch, FailedRecord, Run
from tests.conftest import FAST_HASHERS, persona_create
from tests.factories import (
    EntityMappingFactory,
    FieldMappingFactory,
    LookupTableFactory,
    MilestoneFactory,
    PlanFactory,
    RuleStepFactory,
)

# Reachable by any logged-in user on purpose: authentication and their own password.
OPEN = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "healthz",
    "metrics",  # not role-based: bearer token or loopback (tests/web/test_health_metrics.py)
    "api-schema",
    "api-docs",
    "api-root",
}


def _patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield namespace + (entry.name or ""), prefix + str(entry.pattern), entry


@pytest.fixture
def objects(db):
    return _objects_build()


def _objects_build() -> dict:
    plan = PlanFactory()
    entity = EntityMappingFactory(plan=plan)
    field = FieldMappingFactory(entity=entity)
    step = RuleStepFactory(field=field)
    lookup = LookupTableFactory(plan=plan)
    milestone = MilestoneFactory(plan=plan)
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    Batch.objects.create(run=run, entity=entity.name, seq=1)
    record = FailedRecord.objects.create(
        run=run, entity=entity.name, source_key="1", stage="transform", category="c", message="m"
    )
    upload = FileUpload.objects.create(
        system=plan.source, filename="people.csv", table="people", size=20
    )
    return {
        "slug": plan.slug,
        "plan": plan.slug,
        "name": entity.name,
        "entity": entity.name,
        "number": 1,
        "a": 1,
        "b": 1,
        "pk": milestone.pk,
        "id": milestone.pk,
        "uuid": {
            "system": str(plan.source.uuid),
            "entity": str(entity.uuid),
            "field": str(field.uuid),
            "step": str(step.uuid),
            "lookup": str(lookup.uuid),
            "run": str(run.uuid),
            "record": str(record.uuid),
            "upload": str(upload.uuid),
        },
        "upload": str(upload.uuid),
        "fmt": "csv",
        "format": "json",
        "table": "customers",
        "column": "Cust_Name",
    }


def _fill(route: str, objects: dict, name: str) -> str | None:
    import re

    def value(match):
        key = match.group(2)
        if key not in objects:
            raise KeyError(key)
        v = objects[key]
        if isinstance(v, dict):  # which uuid: guess from the route's words
            for word, uuid in v.items():
                if word in route or word in name:
                    return uuid
            return v["run"]
        return str(v)

    try:
        path = re.sub(r"<(?:(\w+):)?(\w+)>", value, route)
    except KeyError:
        return None
    if "(?P<" in path or "^" in path or "\\" in path:
        return None
    return "/" + path


def test_no_url_answers_a_user_without_a_role(client_for, outsider, objects):
    client = client_for(outsider)
    checked, leaks = 0, []
    for name, route, _ in _patterns():
        if (
            name.split(":")[-1] in OPEN
            or name.startswith("admin:")
            or "<drf_format_suffix" in route
        ):
            continue
        path = _fill(route, objects, name)
        if path is None:
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            checked += 1
            if response.status_code < 300 or (
                response.status_code in (301, 302)
                and "/accounts/login" not in response.get("Location", "")
            ):
                leaks.append((method.upper(), path, response.status_code))
    assert checked > 100
    assert leaks == []


# ------------------------------------------------------------ the roles matrix (issue 17.5)
# What each role may do, written from README's roles table (not read from roles.py): the code
# must match this. admin has everything (a superuser; four eyes still apply to signing off).
V, E, S, L, C, R, Q, U, SO, AU = (
    "view",
    "edit",
    "systems",
    "launch",
    "control",
    "rollback",
    "queue",
    "uat",
    "signoff",
    "audit",
)
RC = "reconcile"  # ask for a new reconciliation: every role but the read-only viewer
ROLE_CAN = {
    "analyst": {V, E, S, L, C, Q, AU, RC},
    "approver": {V, U, SO, AU, RC},
    "operator": {V, L, C, R, Q, AU, RC},
    "viewer": {V, AU},
    "admin_user": {V, E, S, L, C, R, Q, U, SO, AU, RC},
}
# page name -> (capability for GET, capability for POST)
PAGES = {
    "dashboard": (V, V),
    "mappings:plan_list": (V, V),
    "mappings:plan_create": (E, E),
    "mappings:plan_detail": (V, V),
    "mappings:plan_edit": (E, E),
    "mappings:plan_status": (E, E),
    "mappings:milestones": (V, V),
    "mappings:milestone_add": (E, E),
    "mappings:milestone_edit": (E, E),
    "mappings:milestone_delete": (E, E),
    "mappings:plan_yaml": (V, V),
    "mappings:plan_document": (V, V),
    "mappings:plan_history": (V, V),
    "mappings:version_create": (E, E),
    "mappings:version_diff": (V, V),
    "mappings:version_revert": (E, E),
    "mappings:plan_drift": (V, V),
    "mappings:plan_version_drift": (V, V),
    "mappings:plan_import": (E, E),
    "mappings:plan_clone": (E, E),
    "mappings:plan_archive": (E, E),
    "mappings:plan_delete": (E, E),
    "mappings:plan_rebaseline": (E, E),
    "mappings:step_form": (E, E),
    "mappings:entity_new": (E, E),
    "mappings:entity_editor": (V, V),
    "mappings:entity_settings": (E, E),
    "mappings:entity_delete": (E, E),
    "mappings:entity_grid": (V, V),
    "mappings:entity_preview": (V, V),
    "mappings:entity_suggest": (V, V),
    "mappings:entity_suggest_decide": (E, E),
    "mappings:field_editor": (V, V),
    "mappings:field_save": (E, E),
    "mappings:field_delete": (E, E),
    "mappings:step_add": (E, E),
    "mappings:step_save": (E, E),
    "mappings:step_move": (E, E),
    "mappings:step_delete": (E, E),
    "mappings:lookup_list": (V, E),
    "mappings:lookup_detail": (V, V),
    "mappings:lookup_edit": (E, E),
    "mappings:lookup_delete": (E, E),
    "mappings:lookup_entry_add": (E, E),
    "mappings:lookup_entry_edit": (E, E),
    "mappings:lookup_entry_delete": (E, E),
    "mappings:lookup_upload": (E, E),
    "mappings:lookup_download": (V, V),
    "mappings:system_list": (V, V),
    "mappings:system_create": (S, S),
    "mappings:system_detail": (V, V),
    "mappings:system_edit": (S, S),
    "mappings:system_delete": (S, S),
    "mappings:system_test": (S, S),
    "mappings:system_schema": (V, V),
    "mappings:system_upload": (S, S),
    "mappings:upload_status": (V, V),
    "mappings:table_profile": (V, V),
    "mappings:entity_profile": (V, V),
    "mappings:suggestion_apply": (E, E),
    "runs:run_list": (V, V),
    "runs:run_compare": (V, V),
    "runs:run_detail": (V, V),
    "runs:run_live": (V, V),
    "runs:run_pause": (C, C),
    "runs:run_resume": (C, C),
    "runs:run_cancel": (C, C),
    "runs:run_stop": (C, C),
    "runs:queue": (V, V),
    "runs:queue_top": (V, V),
    "runs:queue_export": (V, V),
    "runs:rollback": (R, R),
    "runs:rollback_progress": (V, V),
    "runs:rollback_status": (V, V),
    "runs:launch": (L, L),
    "runs:queue_all": (V, V),
    "runs:queue_top_all": (V, V),
    "runs:queue_export_all": (V, V),
    "runs:queue_reprocess": (Q, Q),
    "runs:queue_ignore": (Q, Q),
    "runs:failed_record": (V, V),
    "runs:failed_record_correct": (Q, Q),
    "runs:notifications": (V, V),
    "runs:notifications_read": (V, V),
    "validation:rules": (V, V),
    "validation:rule_save": (E, E),
    "validation:rule_delete": (E, E),
    "validation:prevalidate": (L, L),
    "validation:report": (V, V),
    "validation:report_export": (V, V),
    "validation:uat": (V, V),
    "validation:uat_case_save": (E, E),
    "validation:uat_case_delete": (E, E),
    "validation:uat_result": (U, U),
    "validation:signoff": (V, V),
    "validation:signoff_decide": (SO, SO),
    "validation:audit": (AU, AU),
    "validation:reconcile": (RC, RC),
    "validation:cutover": (V, V),
    "validation:cutover_step": (R, R),
    "accounts:tokens": (V, V),
    "accounts:token_revoke": (V, V),
}
_CRUD = {"put": E, "patch": E, "delete": E}
# API route name -> {method: capability}; every GET is "view".
API = {
    "system-list": {"post": S},
    "system-detail": {"put": S, "patch": S, "delete": S},
    "system-table-schema": {},
    "system-test-connection": {"post": S},
    "file-upload-list": {},
    "file-upload-detail": {},
    "plan-list": {"post": E},
    "plan-import-yaml": {"post": E},
    "plan-detail": _CRUD,
    "plan-preview": {"post": V},
    "plan-profile-suggestions": {"post": E},
    "plan-set-status": {"post": E},
    "plan-version-diff": {},
    "plan-version-revert": {"post": E},
    "plan-versions": {"post": E},
    "plan-yaml": {},
    "milestone-list": {"post": E},
    "milestone-detail": _CRUD,
    "entity-list": {"post": E},
    "entity-detail": _CRUD,
    "field-mapping-list": {"post": E},
    "field-mapping-detail": _CRUD,
    "rule-step-list": {"post": E},
    "rule-step-detail": _CRUD,
    "rule-step-move": {"post": E},
    "rule-type-list": {},
    "rule-type-detail": {},
    "lookup-list": {"post": E},
    "lookup-detail": _CRUD,
    "lookup-csv": {"post": E},
    "lookup-entries": {"post": E, "delete": E},
    "run-list": {"post": L},
    "run-detail": {},
    "run-cancel": {"post": C},
    "run-pause": {"post": C},
    "run-resume": {"post": C},
    "run-rollback": {"post": R},
    "run-stop": {"post": C},
    "plan-clone": {"post": E},
    "plan-archive": {"post": E},
    "run-rollbacks": {},
    "validation-rule-list": {"post": E},
    "validation-rule-detail": _CRUD,
    "run-report-list": {},
    "run-report-detail": {},
    "run-report-reconcile": {"post": RC},
    "cutover-detail": {},
    "cutover-open": {"post": R},
    "cutover-freeze": {"post": R},
    "cutover-decide": {"post": R},
    "cutover-rollback": {"post": R},
    "failed-record-list": {},
    "failed-record-ignore": {"post": Q},
    "failed-record-reprocess": {"post": Q},
    "failed-record-detail": {"patch": Q},
    # issue 18: what the pages offered and the API lacked
    "plan-document": {},
    "plan-drift": {},
    "plan-version-drift": {},
    "plan-rebaseline": {"post": E},
    "plan-import-check": {"post": E},
    "plan-suggestions": {"post": E},
    "system-profile": {},
    "system-upload": {"post": S},
    "run-compare": {},
    "failed-record-top": {},
    "notification-list": {},
    "notification-read": {"post": V},
    "validation-rule-prevalidate": {"post": L},
    "uat-case-list": {"post": E},
    "uat-case-detail": _CRUD,
    "uat-case-results": {"post": U},
    "uat-case-coverage": {},
    "signoff-list": {"post": SO},
    "signoff-detail": {},
    "audit-event-list": {},
    "audit-event-detail": {},
    "access-token-list": {"post": V},
    "access-token-detail": {"delete": V},
}
API_UUID = {
    "systems": "system",
    "entities": "entity",
    "field-mappings": "field",
    "rule-steps": "step",
    "lookups": "lookup",
    "runs": "run",
    "failed-records": "record",
    "validation-rules": "rule",
    "uat-cases": "uat",
    "signoffs": "signoff",
    "tokens": "token",
    "file-uploads": "upload",
}


def _api_routes():
    """(name, regex route, {method: action}) of every API route (no format suffixes)."""
    for name, route, entry in _patterns():
        actions = getattr(entry.callback, "actions", None)
        if actions and route.startswith("api/") and "(?P<format>" not in route:
            yield name, route, actions


def _api_path(route: str, objects: dict) -> str:
    import re

    route = route.replace("^", "").replace("$", "")
    collection = route.split("/")[1]

    def value(match):
        key = match.group(1)
        if key == "uuid":
            return objects["uuid"][API_UUID[collection]]
        if key == "run":
            return objects["uuid"]["run"]
        if key == "pk" and collection == "audit-events":
            return str(objects["audit"])
        return str(
            {
                "slug": objects["slug"],
                "entity_name": objects["entity"],
                "number": 1,
                "pk": objects["pk"],
                "name": "trim",
                "table": objects["table"],
            }[key]
        )

    return "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", value, route)


def _operations():
    ops = []
    for name, (get_cap, post_cap) in PAGES.items():
        ops += [("page", name, "get", get_cap), ("page", name, "post", post_cap)]
    for name, methods in API.items():
        ops.append(("api", name, "get", V))
        ops += [("api", name, m, cap) for m, cap in methods.items()]
    return ops


def test_the_matrix_names_every_url_and_api_operation():
    pages = {
        n
        for n, r, _ in _patterns()
        if not n.startswith("admin:")
        and n.split(":")[-1] not in OPEN
        and not r.startswith("api/")
        and "<drf_format_suffix" not in r
    }
    api = {}
    for name, _, actions in _api_routes():
        api.setdefault(name, set()).update(actions)
    assert pages == set(PAGES)
    assert set(api) == set(API)
    for name, methods in api.items():
        assert methods - {"get", "head"} == set(API[name]), name


@pytest.fixture
def matrix_objects(objects):
    return _matrix_objects_build(objects)


def _matrix_objects_build(objects: dict) -> dict:
    from mappings.services import plan_snapshot_build
    from validation.models import ValidationRule

    version = PlanVersion.objects.get(number=1)
    plan = version.plan
    PlanVersion.objects.filter(pk=version.pk).update(  # a real snapshot (drift reads it)
        snapshot=plan_snapshot_build(plan=plan, version=1).to_dict()
    )
    rule = ValidationRule.objects.create(
        plan=plan,
        name="r",
        kind="row_count_range",
        phase="pre",
        entity=objects["entity"],
        params={"min": 1},
    )
    objects["uuid"]["rule"] = str(rule.uuid)
    from django.contrib.auth import get_user_model

    from validation.audit import audit_record
    from validation.models import SignOff, UATTestCase

    case = UATTestCase.objects.create(plan=plan, title="t", steps="s", expected_result="e")
    objects["uuid"]["uat"] = str(case.uuid)
    signer = get_user_model().objects.create_user("signer")
    run = Run.objects.get(uuid=objects["uuid"]["run"])
    signoff = SignOff.objects.create(
        plan=plan, version=version, run=run, approver=signer, decision="rejected", reason="r"
    )
    objects["uuid"]["signoff"] = str(signoff.uuid)
    objects["audit"] = audit_record(action="create", obj=plan).pk
    objects["uuid"]["token"] = "0b7f7d3e-5f7a-4c57-9d43-6f1de0c0a001"  # nobody's: 404
    objects["step"] = objects["uuid"]["step"]
    return objects


@pytest.fixture(scope="module")
def matrix_world(django_db_setup, django_db_blocker):
    """matrix_objects and one user per role, created once for the ~400 operations below in a
    transaction left open around them: each test runs in a savepoint of it (the `db` fixture)
    and is rolled back to exactly these rows; the whole is rolled back after the last one."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
    try:
        with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS):
            objects = _matrix_objects_build(_objects_build())
            users = {role: persona_create(role) for role in ROLE_CAN}
        yield objects, users
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.mark.parametrize(
    "kind,name,method,capability",
    _operations(),
    ids=[f"{k}:{n}:{m}" for k, n, m, _ in _operations()],
)
def test_every_operation_checks_the_role(matrix_world, db, client, kind, name, method, capability):
    """Each role is refused (403; 405 for a method the URL does not take) exactly where the
    matrix says it may not, and never refused where it may."""
    matrix_objects, users = matrix_world
    if kind == "page":
        route = next(r for n, r, _ in _patterns() if n == name)
        path = _fill(route, matrix_objects, name)
    else:
        route = next(r for n, r, _ in _api_routes() if n == name)
        path = _api_path(route, matrix_objects)
    assert path is not None, name
    wrong = []
    for role, can in ROLE_CAN.items():
        client.force_login(users[role])
        response = (
            getattr(client, method)(path, content_type="application/json")
            if kind == "api" and method != "get"
            else getattr(client, method)(path)
        )
        status = response.status_code
        allowed = capability in can
        if allowed and (status in (401, 403) or status >= 500):
            wrong.append((role, "refused" if status < 500 else "crashed", status))
        if not allowed and status not in (403, 405):
            wrong.append((role, "let through", status))
        client.logout()
    assert wrong == [], f"{method.upper()} {path}"
