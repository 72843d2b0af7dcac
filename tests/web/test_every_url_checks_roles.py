"""Every page and endpoint refuses a logged-in user without a role (server-side checks)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from mappings.models import PlanVersion
from runs.models import Batch, FailedRecord, Run
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
        },
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
