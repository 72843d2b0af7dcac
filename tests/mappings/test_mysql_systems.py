"""MySQL (MariaDB) systems in the workbench: register, test, browse, sample, preview."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from mappings import schema
from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import System
from mappings.preview import entity_preview
from tests.mappings.workbench_fixtures import demo_files, demo_systems  # noqa: F401
from tests.support import mysql

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(scope="module")
def legacy_db():
    """The demo legacy CRM (300 customers) in a MariaDB database, read-only here."""
    with mysql.throwaway_database("wb_my") as name:
        legacy_crm.build_source(mysql.url_for(name), rows=300, seed=2026)
        with mysql.raw(name).cursor() as cur:  # odd names and a binary column for the queries
            cur.execute(
                "CREATE TABLE `odd ``t` (`k %` int PRIMARY KEY, `v``x` varchar(8), b varbinary(4))"
            )
            cur.execute(
                "INSERT INTO `odd ``t` VALUES (1, 'abc', x'00ff'), (2, 'abcdefgh', NULL),"
                " (3, 'abc', '')"
            )
        yield name


def _form(database: str, **extra) -> dict:
    p = mysql.admin_params()
    return {
        "name": "Legacy MySQL",
        "kind": "mysql",
        "environment": "dev",
        "role": "source",
        "host": p["host"],
        "port": str(p["port"]),
        "database": database,
        "username": p["user"],
        "secret": p["password"] or "unused-secret",
        **extra,
    }


@pytest.fixture
def my_system(legacy_db) -> System:
    schema.schema_cache_clear()
    p = mysql.admin_params()
    system = System(
        name="Legacy MySQL",
        kind="mysql",
        host=p["host"],
        port=p["port"],
        database=legacy_db,
        username=p["user"],
        role="source",
    )
    system.set_secret(p["password"])
    system.save()
    return system


def test_register_a_mysql_system_as_a_source_only(client_for, analyst, legacy_db):
    client = client_for(analyst)
    both = client.post(reverse("mappings:system_create"), _form(legacy_db, role="both"))
    body = both.content.decode()
    assert both.status_code == 200 and not System.objects.exists()
    assert "A MySQL system can only be a source" in body
    no_host = client.post(reverse("mappings:system_create"), _form(legacy_db, host=""))
    assert "A MySQL system needs a host and a database name." in no_host.content.decode()
    saved = client.post(reverse("mappings:system_create"), _form(legacy_db, port=""))
    system = System.objects.get(name="Legacy MySQL")
    assert saved.status_code == 302
    assert system.connection_params()["port"] == 3306  # the MySQL default, not PostgreSQL's
    edit = client.get(reverse("mappings:system_edit", args=[system.uuid])).content.decode()
    assert "unused-secret" not in edit and "MySQL / MariaDB (source only)" in edit


def test_test_connection_and_schema_page(client_for, analyst, my_system):
    client = client_for(analyst)  # test connection needs edit rights (issue 17.2)
    ok = client.post(reverse("mappings:system_test", args=[my_system.uuid]), **HTMX)
    body = ok.content.decode()
    assert "Connected: MariaDB 10." in body or "Connected: MySQL 8." in body
    assert "customers (~" in body and "orders (~" in body
    page = client.get(reverse("mappings:system_schema", args=[my_system.uuid])).content.decode()
    assert "<code>Cust_Name</code>" in page and "varchar(255)" in page and "primary" in page


def test_sample_counts_and_value_counts_quote_names_and_read_text(my_system):
    frame = schema.sample_frame(my_system, "odd `t", ["k %", "v`x", "b"], limit=5, key=["k %"])
    assert frame.values.tolist() == [
        ["1", "abc", "\\x00ff"],
        ["2", "abcdefgh", None],
        ["3", "abc", "\\x"],
    ]
    assert len(schema.sample_frame(my_system, "odd `t", ["k %"], limit=2, order="random")) == 2
    assert schema.count_longer(my_system, "odd `t", "v`x", 3) == 1
    assert schema.value_counts(my_system, "odd `t", "v`x") == [("abc", 2), ("abcdefgh", 1)]
    assert not schema.has_keymap(my_system)
    with pytest.raises(Exception, match="does not exist"):
        schema.sample_frame(my_system, "odd `t", ["`; DROP TABLE x"], limit=1)


def test_preview_and_plan_rules_with_a_mysql_source(client_for, analyst, my_system, demo_systems):
    target = demo_systems[1]
    plan, _ = demo_plan_install(
        source=my_system,
        target=target,
        owner=analyst,
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    preview = entity_preview(entity=plan.entities.get(name="accounts"), limit=50)
    assert preview.error is None and len(preview.rows) == 50
    assert preview.source_columns[0] == "Customer_ID"
    with mysql.raw(my_system.database).cursor() as cur:
        cur.execute("SELECT Customer_ID FROM customers ORDER BY Customer_ID LIMIT 3")
        first = [str(r[0]) for r in cur.fetchall()]
    assert [r.source[0] for r in preview.rows[:3]] == first
    assert any(r.status == "failed" for r in preview.rows)
    # the plan cannot load into a MySQL system
    client = client_for(analyst)
    response = client.post(
        reverse("mappings:plan_edit", args=[plan.slug]),
        {
            "name": plan.name,
            "source": my_system.pk,
            "target": my_system.pk,
            "strategy": "big_bang",
            "batch_size": "1000",
            "parallelism": "2",
            "failure_threshold_pct": "10",
        },
    )
    plan.refresh_from_db()
    assert plan.target_id == target.pk
    assert response.status_code == 200
    assert "“Legacy MySQL” is registered as a source only." in response.content.decode()


def test_api_mysql_system_source_only_and_connection_report(
    client_for, analyst, viewer, legacy_db, my_system
):
    client = client_for(analyst)
    base = {"name": "api-my", "kind": "mysql", "host": "127.0.0.1", "database": legacy_db}
    refused = client.post(
        "/api/systems/", {**base, "role": "target"}, content_type="application/json"
    )
    assert refused.status_code == 400
    assert refused.json()["field"] == "role" and "only be a source" in refused.json()["detail"]
    assert (
        client_for(viewer).post(f"/api/systems/{my_system.uuid}/test-connection/").status_code
        == 403
    )
    report = client_for(analyst).post(f"/api/systems/{my_system.uuid}/test-connection/").json()
    assert report["ok"] is True and report["message"].split()[0] in ("MariaDB", "MySQL")
    assert "customers" in [t["name"] for t in report["tables"]]
    my_system.set_secret("wrong-password-123")
    my_system.username = "nobody"
    my_system.save()
    bad = client_for(analyst).post(f"/api/systems/{my_system.uuid}/test-connection/").json()
    assert bad["ok"] is False and "Access denied" in bad["message"]
    assert "wrong-password-123" not in str(bad)
