"""Fixtures for the workbench tests: the demo source/target as SQLite files, and the demo plan.

The demo is built into temporary SQLite files (not the shared PostgreSQL demo databases that
``demo_install`` uses on a PostgreSQL app database), so tests never clobber a developer's demo.
Import the fixtures you need: ``from tests.mappings.workbench_fixtures import demo_plan``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import System
from mappings.schema import schema_cache_clear


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workbench-demo")
    source, target = folder / "legacy_crm.sqlite3", folder / "new_crm.sqlite3"
    legacy_crm.build_source(f"sqlite:///{source}", rows=300, seed=2026)
    legacy_crm.build_target(f"sqlite:///{target}")
    return source, target


@pytest.fixture
def demo_systems(db, demo_files):
    schema_cache_clear()
    source = System.objects.create(
        name="Legacy CRM", kind="sqlite", path=str(demo_files[0]), role="source"
    )
    target = System.objects.create(
        name="New CRM (UAT)",
        kind="sqlite",
        path=str(demo_files[1]),
        role="target",
        environment="uat",
    )
    return source, target


@pytest.fixture
def demo_plan(demo_systems, analyst):
    source, target = demo_systems
    plan, _ = demo_plan_install(
        source=source,
        target=target,
        owner=analyst,
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    return plan
