"""The SQL rollback after each transactional test (tests/support/db_baseline.py): whatever a
test wrote, every model table ends exactly as migrated (the captured rows, nothing else)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from mappings.models import PlanVersion
from runs.models import FailedRecord, FailedRecordTally, Run
from tests.conftest import _BASELINE
from tests.factories import PlanFactory, UserFactory
from tests.support.db_baseline import SCHEMA, _quoted, _tables, baseline_restore

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _contents() -> dict[str, list[tuple]]:
    with connection.cursor() as cur:
        out = {}
        for table in _tables(connection):
            cur.execute(f"SELECT * FROM {_quoted(connection, table)} ORDER BY 1")  # noqa: S608
            out[table] = cur.fetchall()
        return out


def _migrated() -> dict[str, list[tuple]]:
    kept = _BASELINE[connection.alias]
    with connection.cursor() as cur:
        out = dict.fromkeys(_tables(connection), [])
        for table in kept:
            cur.execute(f"SELECT * FROM {SCHEMA}.{_quoted(connection, table)} ORDER BY 1")  # noqa: S608
            out[table] = cur.fetchall()
        return out


def test_restore_leaves_exactly_the_migrated_rows():
    assert Group.objects.exists()  # the migrated roles are there to begin with
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    FailedRecord.objects.create(
        run=run, entity="a", source_key="1", stage="transform", category="c", message="m"
    )
    UserFactory(username="someone", roles=["analyst"])
    Group.objects.filter(name="viewer").delete()  # a migrated row gone
    assert FailedRecordTally.objects.exists()  # written by the insert trigger
    before = _contents()
    baseline_restore(connection, _BASELINE[connection.alias])
    after = _contents()
    assert after == _migrated()
    assert after != before
