"""The demo installer: one user per role, systems, data and plan — and idempotent."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from mappings.demo import legacy_crm
from mappings.demo_setup import demo_install
from mappings.models import EntityMapping, FieldMapping, Plan, System
from validation.models import UATTestCase, ValidationRule

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def demo_dir(settings, tmp_path):
    settings.DEMO_DATA_DIR = tmp_path / "demo"


def _sqlite_url(settings, name: str) -> str:
    return f"sqlite:///{(settings.DEMO_DATA_DIR / name).resolve()}"


def test_demo_creates_users_systems_data_and_plan(settings, monkeypatch):
    monkeypatch.setattr("mappings.demo_setup.connection.vendor", "sqlite")
    report = demo_install(rows=200)
    assert sorted(report.users_created) == ["admin", "analyst", "approver", "operator", "viewer"]
    for name in report.users_created:
        user = User.objects.get(username=name)
        assert list(user.groups.values_list("name", flat=True)) == [name]
        assert user.check_password(settings.DEMO_PASSWORD)
    assert User.objects.get(username="admin").is_staff
    assert report.source_counts == {"customers": 200, "contacts": 400, "orders": 600}
    assert set(System.objects.values_list("environment", flat=True)) == {"dev", "uat", "prod"}
    plan = Plan.objects.get()
    assert [e.name for e in plan.entities.order_by("load_order")] == [
        "accounts",
        "contacts",
        "orders",
    ]
    fields = dict(
        FieldMapping.objects.filter(entity__name="accounts").values_list(
            "target_column", "source_columns"
        )
    )
    assert fields["account_number"] == ["Customer_ID"]
    assert fields["billing_street"] == ["Address_Line1", "Address_Line2"]
    assert plan.lookups.get(name="account-status").entries.get(key="1").value == "Active"
    assert plan.milestones.count() == 6
    assert ValidationRule.objects.filter(plan=plan).count() > 0
    assert UATTestCase.objects.filter(plan=plan).count() == 3
    assert legacy_crm.target_exists(_sqlite_url(settings, "new_crm_uat.sqlite3")) == {
        "accounts": 0,
        "contacts": 0,
        "orders": 0,
    }


def test_demo_twice_duplicates_nothing(monkeypatch):
    monkeypatch.setattr("mappings.demo_setup.connection.vendor", "sqlite")
    demo_install(rows=200)
    counts = (
        User.objects.count(),
        System.objects.count(),
        Plan.objects.count(),
        EntityMapping.objects.count(),
        FieldMapping.objects.count(),
    )
    second = demo_install(rows=200)
    assert (second.plan_created, second.source_rebuilt, second.users_created) == (False, False, [])
    assert counts == (
        User.objects.count(),
        System.objects.count(),
        Plan.objects.count(),
        EntityMapping.objects.count(),
        FieldMapping.objects.count(),
    )


def test_demo_resize_rebuilds_source_only(monkeypatch):
    monkeypatch.setattr("mappings.demo_setup.connection.vendor", "sqlite")
    demo_install(rows=200)
    report = demo_install(rows=300)
    assert report.source_rebuilt and report.source_counts["customers"] == 300
    assert Plan.objects.count() == 1


def test_load_demo_command_prints_logins(capsys, monkeypatch):
    monkeypatch.setattr("mappings.demo_setup.connection.vendor", "sqlite")
    call_command("load_demo", "--rows", "100")
    out = capsys.readouterr().out
    assert "customers 100" in out and "password: demo-pass-2026" in out


def test_load_demo_refuses_zero_rows():
    with pytest.raises(SystemExit):
        call_command("load_demo", "--rows", "0")


def test_demo_on_postgresql_uses_postgresql_databases():
    """The app DB is PostgreSQL in the test suite: the demo's systems follow it."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("the test suite must run on PostgreSQL")
    report = demo_install(rows=100)
    kinds = set(System.objects.values_list("kind", flat=True))
    assert kinds == {"postgresql"}
    assert report.source_counts["customers"] == 100
    source = System.objects.get(name="Legacy CRM")
    assert source.database == "mp_demo_legacy_crm"
