"""API parity (issue 18): every action a page offers is an operation of the REST API.

Every HTML view that handles POST (found from the URLconf: a class-based view with ``post``,
or a function view whose code uses ``require_POST`` / ``request.POST`` / ``request.method`` /
``request.FILES``) must appear in ``ACTIONS`` with the API operations that do the same thing,
and every page that only reads must appear in ``READS``. An HTML action without an API
operation, a mapping to an operation the OpenAPI schema does not have, or a stale entry fails.
"""

from __future__ import annotations

import inspect

import pytest
import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

# HTML action (URL name) -> the API operations ("METHOD /api/path/") that do the same.
ACTIONS: dict[str, list[str]] = {
    "mappings:plan_create": ["POST /api/plans/"],
    "mappings:plan_import": ["POST /api/plans/import/check/", "POST /api/plans/import/"],
    "mappings:plan_edit": ["PUT /api/plans/{slug}/", "PATCH /api/plans/{slug}/"],
    "mappings:plan_status": ["POST /api/plans/{slug}/status/"],
    "mappings:plan_clone": ["POST /api/plans/{slug}/clone/"],
    "mappings:plan_archive": ["POST /api/plans/{slug}/archive/"],
    "mappings:plan_delete": ["DELETE /api/plans/{slug}/"],
    "mappings:milestone_add": ["POST /api/milestones/"],
    "mappings:milestone_edit": ["PUT /api/milestones/{id}/", "PATCH /api/milestones/{id}/"],
    "mappings:milestone_delete": ["DELETE /api/milestones/{id}/"],
    "mappings:version_create": ["POST /api/plans/{slug}/versions/"],
    "mappings:plan_rebaseline": ["POST /api/plans/{slug}/drift/rebaseline/"],
    "mappings:version_revert": ["POST /api/plans/{slug}/versions/{number}/revert/"],
    "mappings:entity_new": ["POST /api/entities/"],
    "mappings:entity_settings": ["PATCH /api/entities/{uuid}/"],
    "mappings:entity_delete": ["DELETE /api/entities/{uuid}/"],
    "mappings:entity_suggest_decide": [
        "POST /api/plans/{slug}/entities/{entity_name}/suggestions/"
    ],
    "mappings:field_save": ["POST /api/field-mappings/", "PATCH /api/field-mappings/{uuid}/"],
    "mappings:field_delete": ["DELETE /api/field-mappings/{uuid}/"],
    "mappings:step_add": ["POST /api/rule-steps/"],
    "mappings:suggestion_apply": [
        "POST /api/plans/{slug}/entities/{entity_name}/profile-suggestions/"
    ],
    "mappings:step_save": ["PATCH /api/rule-steps/{uuid}/"],
    "mappings:step_move": ["POST /api/rule-steps/{uuid}/move/"],
    "mappings:step_delete": ["DELETE /api/rule-steps/{uuid}/"],
    "mappings:lookup_list": ["POST /api/lookups/"],
    "mappings:lookup_edit": ["PATCH /api/lookups/{uuid}/"],
    "mappings:lookup_delete": ["DELETE /api/lookups/{uuid}/"],
    "mappings:lookup_entry_add": ["POST /api/lookups/{uuid}/entries/"],
    "mappings:lookup_entry_edit": ["POST /api/lookups/{uuid}/entries/"],
    "mappings:lookup_entry_delete": ["DELETE /api/lookups/{uuid}/entries/"],
    "mappings:lookup_upload": ["POST /api/lookups/{uuid}/csv/"],
    "mappings:system_create": ["POST /api/systems/"],
    "mappings:system_edit": ["PUT /api/systems/{uuid}/", "PATCH /api/systems/{uuid}/"],
    "mappings:system_delete": ["DELETE /api/systems/{uuid}/"],
    "mappings:system_test": ["POST /api/systems/{uuid}/test-connection/"],
    "mappings:system_upload": ["POST /api/systems/{uuid}/upload/"],
    "runs:run_pause": ["POST /api/runs/{uuid}/pause/"],
    "runs:run_resume": ["POST /api/runs/{uuid}/resume/"],
    "runs:run_cancel": ["POST /api/runs/{uuid}/cancel/"],
    "runs:run_stop": ["POST /api/runs/{uuid}/stop/"],
    "runs:rollback": ["POST /api/runs/{uuid}/rollback/"],
    "runs:launch": ["POST /api/runs/"],
    "runs:queue_reprocess": ["POST /api/failed-records/reprocess/"],
    "runs:queue_ignore": ["POST /api/failed-records/ignore/"],
    "runs:failed_record_correct": [
        "PATCH /api/failed-records/{uuid}/",
        "POST /api/failed-records/reprocess/",
    ],
    "runs:notifications_read": ["POST /api/notifications/read/"],
    "validation:rule_save": ["POST /api/validation-rules/", "PATCH /api/validation-rules/{uuid}/"],
    "validation:rule_delete": ["DELETE /api/validation-rules/{uuid}/"],
    "validation:prevalidate": ["POST /api/validation-rules/prevalidate/"],
    "validation:reconcile": ["POST /api/run-reports/{run}/reconcile/"],
    "validation:uat_case_save": ["POST /api/uat-cases/", "PATCH /api/uat-cases/{uuid}/"],
    "validation:uat_case_delete": ["DELETE /api/uat-cases/{uuid}/"],
    "validation:uat_result": ["POST /api/uat-cases/{uuid}/results/"],
    "validation:signoff_decide": ["POST /api/signoffs/"],
    "accounts:tokens": ["POST /api/tokens/"],
    "accounts:token_revoke": ["DELETE /api/tokens/{uuid}/"],
    "validation:cutover_step": [
        "POST /api/cutovers/{slug}/open/",
        "POST /api/cutovers/{slug}/freeze/",
        "POST /api/cutovers/{slug}/decide/",
        "POST /api/cutovers/{slug}/rollback/",
    ],
}

# Pages that only read -> the API operations that return the same information.
READS: dict[str, list[str]] = {
    "dashboard": ["GET /api/plans/", "GET /api/runs/"],
    "mappings:plan_list": ["GET /api/plans/"],
    "mappings:plan_detail": ["GET /api/plans/{slug}/", "GET /api/entities/"],
    "mappings:milestones": ["GET /api/milestones/"],
    "mappings:plan_yaml": ["GET /api/plans/{slug}/yaml/"],
    "mappings:plan_document": ["GET /api/plans/{slug}/document/"],
    "mappings:plan_history": ["GET /api/plans/{slug}/versions/", "GET /api/audit-events/"],
    "mappings:version_diff": ["GET /api/plans/{slug}/versions/diff/"],
    "mappings:plan_drift": ["GET /api/plans/{slug}/drift/"],
    "mappings:plan_version_drift": ["GET /api/plans/{slug}/versions/{number}/drift/"],
    "mappings:entity_editor": ["GET /api/entities/{uuid}/", "GET /api/field-mappings/"],
    "mappings:entity_grid": ["GET /api/field-mappings/"],
    "mappings:entity_preview": ["POST /api/plans/{slug}/entities/{entity_name}/preview/"],
    "mappings:entity_suggest": ["GET /api/plans/{slug}/entities/{entity_name}/suggestions/"],
    "mappings:field_editor": ["GET /api/field-mappings/{uuid}/"],
    "mappings:step_form": ["GET /api/rule-types/{name}/"],
    "mappings:lookup_detail": ["GET /api/lookups/{uuid}/", "GET /api/lookups/{uuid}/entries/"],
    "mappings:lookup_download": ["GET /api/lookups/{uuid}/csv/"],
    "mappings:system_list": ["GET /api/systems/"],
    "mappings:system_detail": ["GET /api/systems/{uuid}/"],
    "mappings:system_schema": ["GET /api/systems/{uuid}/schema/"],
    "mappings:table_profile": ["GET /api/systems/{uuid}/tables/{table}/profile/"],
    "mappings:upload_status": ["GET /api/file-uploads/{uuid}/"],
    "mappings:entity_profile": [
        "GET /api/systems/{uuid}/tables/{table}/profile/",
        "GET /api/plans/{slug}/entities/{entity_name}/profile-suggestions/",
    ],
    "runs:run_list": ["GET /api/runs/"],
    "runs:run_compare": ["GET /api/runs/compare/"],
    "runs:run_detail": ["GET /api/runs/{uuid}/"],
    "runs:run_live": ["GET /api/runs/{uuid}/"],
    "runs:queue": ["GET /api/failed-records/"],
    "runs:queue_all": ["GET /api/failed-records/"],
    "runs:queue_top": ["GET /api/failed-records/top/"],
    "runs:queue_top_all": ["GET /api/failed-records/top/"],
    "runs:queue_export": ["GET /api/failed-records/"],
    "runs:queue_export_all": ["GET /api/failed-records/"],
    "runs:rollback_progress": ["GET /api/runs/{uuid}/rollbacks/"],
    "runs:rollback_status": ["GET /api/runs/{uuid}/rollbacks/"],
    "runs:failed_record": ["GET /api/failed-records/{uuid}/"],
    "runs:notifications": ["GET /api/notifications/"],
    "validation:report": ["GET /api/run-reports/{run}/"],
    "validation:report_export": ["GET /api/run-reports/{run}/"],
    "validation:uat": [
        "GET /api/uat-cases/",
        "GET /api/uat-cases/{uuid}/results/",
        "GET /api/uat-cases/coverage/",
    ],
    "validation:signoff": ["GET /api/signoffs/", "GET /api/plans/{slug}/versions/"],
    "validation:cutover": ["GET /api/cutovers/{slug}/"],
    "validation:audit": ["GET /api/audit-events/"],
}

# URL names that are not product actions, each with the reason.
NOT_IN_API = {
    "login": "the API authenticates with a token or the session, not the log-in form",
    "logout": "ends the browser session",
    "password_change": "a user's own password: browser only",
    "password_change_done": "a confirmation page",
    "password_reset": "a password reset by e-mail: browser only",
    "password_reset_done": "a confirmation page",
    "password_reset_confirm": "a password reset by e-mail: browser only",
    "password_reset_complete": "a confirmation page",
    "healthz": "monitoring (no role): the same URL serves probes",
    "metrics": "monitoring (bearer token or loopback): the same URL serves scrapers",
}
# Views whose code reads request.POST without being an action of their own.
POST_WITHOUT_ACTION = {
    "validation:rules": "refills the form when rule_save_view re-renders it after a refusal",
}


def _patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield namespace + (entry.name or ""), prefix + str(entry.pattern), entry


def handles_post(callback) -> bool:
    """True when the view takes POST: a class-based view with ``post``, or a function view
    whose code (decorators included) uses one of the POST markers."""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        return hasattr(view_class, "post")
    source = inspect.getsource(inspect.unwrap(callback))
    return any(
        mark in source
        for mark in ("require_POST", "request.POST", "request.method", "request.FILES")
    )


def html_views() -> dict[str, bool]:
    """Every page's URL name -> whether it handles POST (admin and API excluded)."""
    return {
        name: handles_post(entry.callback)
        for name, route, entry in _patterns()
        if not name.startswith("admin:") and not route.startswith("api/")
    }


@pytest.fixture(scope="module")
def operations(django_db_blocker, tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--file", str(out))
    paths = yaml.safe_load(out.read_text())["paths"]
    return {
        f"{method.upper()} {path}"
        for path, ops in paths.items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_handles_post_tells_actions_from_pages():
    views = html_views()
    assert views["mappings:plan_clone"] is True  # form view: GET shows, POST acts
    assert views["runs:run_pause"] is True  # require_POST
    assert views["mappings:plan_document"] is False
    assert views["login"] is True  # class-based


def test_every_html_action_has_an_api_operation(operations):
    views = html_views()
    posting = {n for n, post in views.items() if post} - set(POST_WITHOUT_ACTION)
    missing = sorted(posting - set(ACTIONS) - set(NOT_IN_API))
    assert missing == [], f"HTML actions without an API operation: {missing}"
    stale = sorted(set(ACTIONS) - posting)
    assert stale == [], f"ACTIONS names views that do not handle POST (or do not exist): {stale}"
    assert all(views.get(n) for n in POST_WITHOUT_ACTION), "POST_WITHOUT_ACTION is stale"
    unknown = sorted((n, op) for n, ops in ACTIONS.items() for op in ops if op not in operations)
    assert unknown == [], f"mapped to operations the OpenAPI schema lacks: {unknown}"


def test_every_read_only_page_has_an_api_operation(operations):
    views = html_views()
    reading = {n for n, post in views.items() if not post}
    missing = sorted(reading - set(READS) - set(NOT_IN_API))
    assert missing == [], f"pages without an API operation: {missing}"
    stale = sorted(set(READS) - reading)
    assert stale == [], f"READS names views that handle POST (or do not exist): {stale}"
    assert set(NOT_IN_API) <= set(views), "NOT_IN_API is stale"
    unknown = sorted((n, op) for n, ops in READS.items() for op in ops if op not in operations)
    assert unknown == [], f"mapped to operations the OpenAPI schema lacks: {unknown}"


def test_the_check_fails_for_an_action_without_an_operation(operations):
    """The test can fail: a made-up mapping and a dropped one are both caught."""
    assert "POST /api/plans/{slug}/nonexistent/" not in operations
    views = html_views()
    posting = {n for n, post in views.items() if post} - set(POST_WITHOUT_ACTION)
    without_signoff = set(ACTIONS) - {"validation:signoff_decide"}
    assert sorted(posting - without_signoff - set(NOT_IN_API)) == ["validation:signoff_decide"]
