"""Issue 17.2-3: stored secrets cannot be lured to a new host; the production gate keys on
identity and only an admin may move a system in or out of production."""

from __future__ import annotations

import socket
import struct
import threading

import pytest
from django.conf import settings as dj_settings

from mappings.models import System
from mappings.schema import system_test_connection
from runs.services import run_create
from tests.factories import (
    EntityMappingFactory,
    FieldMappingFactory,
    PlanFactory,
    SystemFactory,
)
from validation.models import AuditEvent, SignOff

pytestmark = pytest.mark.django_db
SECRET = "canary-Pa55-7f3e"


@pytest.fixture
def pg_system():
    system = SystemFactory(
        name="crm-db",
        kind="postgresql",
        host="127.0.0.1",
        port=5999,
        database="crm",
        path="",
        username="etl",
    )
    system.set_secret(SECRET)
    system.save()
    return System.objects.get(pk=system.pk)


@pytest.mark.parametrize(
    "change",
    [
        {"host": "evil.example"},
        {"port": 6000},
        {"database": "other"},
        {"username": "root"},
        {"kind": "mysql", "role": "source"},
    ],
)
def test_changing_the_destination_clears_the_stored_secret(client_for, analyst, pg_system, change):
    response = client_for(analyst).patch(
        f"/api/systems/{pg_system.uuid}/", change, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["has_secret"] is False
    assert System.objects.get(pk=pg_system.pk).secret_ciphertext == ""
    event = AuditEvent.objects.filter(object_id=str(pg_system.uuid)).latest("id")
    assert event.after["secret_cleared"] is True


def test_a_new_secret_in_the_same_request_is_kept_and_a_bare_edit_keeps_it(
    client_for, analyst, pg_system
):
    client = client_for(analyst)
    client.patch(
        f"/api/systems/{pg_system.uuid}/",
        {"description": "just words"},
        content_type="application/json",
    )
    assert System.objects.get(pk=pg_system.pk).connection_params()["password"] == SECRET
    client.patch(
        f"/api/systems/{pg_system.uuid}/",
        {"host": "db2.internal", "secret": "new-1"},
        content_type="application/json",
    )
    assert System.objects.get(pk=pg_system.pk).connection_params()["password"] == "new-1"


def test_orm_edits_clear_the_secret_too(pg_system):
    pg_system.host = "elsewhere.internal"
    pg_system.save()
    assert System.objects.get(pk=pg_system.pk).has_secret is False


@pytest.mark.parametrize("role", ["viewer", "approver", "operator"])
def test_test_connection_needs_edit_rights(client_for, pg_system, role, request):
    user = request.getfixturevalue(role)
    client = client_for(user)
    assert client.post(f"/api/systems/{pg_system.uuid}/test-connection/").status_code == 403
    assert client.post(f"/systems/{pg_system.uuid}/test/").status_code == 403


class _CleartextServer:
    """A socket that asks every client for a cleartext password and records what it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(5)
        try:
            first = conn.recv(8)
            length, code = struct.unpack("!ii", first)
            if code == 80877103:  # SSLRequest: no TLS here
                conn.sendall(b"N")
                first = conn.recv(8)
                length, code = struct.unpack("!ii", first)
            conn.recv(length - 8)
            conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            while chunk := conn.recv(4096):
                self.received += chunk
        except OSError:
            pass
        finally:
            conn.close()
            self.sock.close()


def test_postgresql_never_answers_a_cleartext_password_request(admin_user):
    server = _CleartextServer()
    system = SystemFactory(
        name="trap",
        kind="postgresql",
        host="127.0.0.1",
        port=server.port,
        database="crm",
        path="",
        username="etl",
    )
    system.set_secret(SECRET)
    system.save()
    report = system_test_connection(System.objects.get(pk=system.pk))
    server.thread.join(10)
    assert report.ok is False
    assert "password" in report.message
    assert SECRET.encode() not in server.received


# ---------------------------------------------------------------- production gate


@pytest.fixture
def prod_target():
    db = dj_settings.DATABASES["default"]
    return SystemFactory(
        name="crm-prod",
        kind="postgresql",
        host=db["HOST"],
        port=int(db["PORT"]),
        database="crm_prod",
        path="",
        environment="prod",
        role="target",
    )


def test_only_an_admin_changes_the_environment(client_for, analyst, admin_user, prod_target):
    url = f"/api/systems/{prod_target.uuid}/"
    response = client_for(analyst).patch(
        url, {"environment": "dev"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert System.objects.get(pk=prod_target.pk).environment == "prod"
    made = client_for(analyst).post(
        "/api/systems/",
        {
            "name": "new-prod",
            "kind": "sqlite",
            "path": f"{dj_settings.MP_SYSTEMS_DIR}/mp-new-prod.sqlite3",
            "environment": "prod",
        },
        content_type="application/json",
    )
    assert made.status_code == 403
    assert (
        client_for(admin_user)
        .patch(url, {"environment": "uat"}, content_type="application/json")
        .status_code
        == 200
    )


def test_only_an_admin_edits_where_a_prod_system_points(client_for, analyst, prod_target):
    response = client_for(analyst).patch(
        f"/api/systems/{prod_target.uuid}/",
        {"database": "crm_dev"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "production system" in response.json()["detail"]
    assert (
        client_for(analyst)
        .patch(
            f"/api/systems/{prod_target.uuid}/",
            {"description": "notes"},
            content_type="application/json",
        )
        .status_code
        == 200
    )


def test_a_second_registration_of_a_prod_database_is_prod(
    client_for, analyst, operator, prod_target
):
    db = dj_settings.DATABASES["default"]
    made = client_for(analyst).post(
        "/api/systems/",
        {
            "name": "crm-uat-alias",
            "kind": "postgresql",
            "host": "localhost",
            "port": int(db["PORT"]),
            "database": "crm_prod",
            "environment": "uat",
            "role": "target",
        },
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    alias = System.objects.get(name="crm-uat-alias")
    assert alias.environment == "uat" and alias.is_production is True
    plan = PlanFactory(target=alias)
    FieldMappingFactory(entity=EntityMappingFactory(plan=plan))
    with pytest.raises(Exception, match="Only an operator"):
        run_create(plan=plan, user=analyst, mode="load")
    with pytest.raises(Exception, match="must be signed off"):
        run_create(plan=plan, user=operator, mode="load")


def test_same_file_twice_is_prod(tmp_path, settings):
    settings.MP_SYSTEMS_DIR = tmp_path
    real = tmp_path / "prod.sqlite3"
    real.touch()
    (tmp_path / "alias.sqlite3").symlink_to(real)
    SystemFactory(name="p", path=str(real), environment="prod")
    alias = SystemFactory(name="a", path=str(tmp_path / "alias.sqlite3"), environment="dev")
    assert alias.is_production is True
    assert SystemFactory(name="b", path=str(tmp_path / "b.sqlite3")).is_production is False


def test_every_system_change_is_audited_and_voids_signoffs(client_for, admin_user, approver):
    plan = PlanFactory()
    from mappings.models import PlanVersion

    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    signoff = SignOff.objects.create(
        plan=plan, version=version, approver=approver, decision="approved"
    )
    before = AuditEvent.objects.count()
    response = client_for(admin_user).patch(
        f"/api/systems/{plan.source.uuid}/",
        {"options": {"busy_timeout_ms": 10}},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert AuditEvent.objects.count() > before
    signoff.refresh_from_db()
    assert signoff.voided_at is not None
    assert "edited by root" in signoff.voided_reason


def _form_data(system: System, **changes) -> dict:
    fields = ("name", "kind", "environment", "role", "host", "database", "username", "path")
    data = {k: getattr(system, k) for k in fields} | {"port": system.port or "", "secret": ""}
    return data | changes


def test_the_system_form_cannot_downgrade_a_production_system(client_for, analyst, prod_target):
    """REVIEW9 J3-1: the HTML form validated into the very instance the service compared with,
    so no change was seen: no gate, no audit 'before', no voided sign-off."""
    from django.urls import reverse

    url = reverse("mappings:system_edit", args=[prod_target.uuid])
    audited = AuditEvent.objects.filter(object_id=str(prod_target.uuid))
    assert audited.count() == 0
    page = client_for(analyst).post(url, _form_data(prod_target, environment="dev"))
    assert page.status_code == 403
    assert "Only an admin may set a system&#x27;s environment." in page.content.decode()
    assert System.objects.get(pk=prod_target.pk).environment == "prod"
    moved = client_for(analyst).post(url, _form_data(prod_target, database="crm_dev"))
    assert moved.status_code == 403 and "only an admin may change" in moved.content.decode()
    assert System.objects.get(pk=prod_target.pk).database == "crm_prod"
    assert audited.count() == 0  # nothing saved, nothing audited


def test_a_system_form_edit_voids_signoffs_and_audits_before_and_after(
    client_for, admin_user, approver
):
    """REVIEW9 J3-1: re-pointing a plan's target through the page voids its sign-off, and the
    audit event's 'before' is the stored row, not the posted one."""
    from django.urls import reverse

    from mappings.models import PlanVersion

    plan = PlanFactory()
    target = plan.target
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    signoff = SignOff.objects.create(
        plan=plan, version=version, approver=approver, decision="approved"
    )
    old_path = target.path
    new_path = f"{dj_settings.MP_SYSTEMS_DIR}/mp-moved-target.sqlite3"
    page = client_for(admin_user).post(
        reverse("mappings:system_edit", args=[target.uuid]),
        _form_data(target, path=new_path, environment="uat"),
    )
    assert page.status_code == 302, page.content.decode()[:2000]
    assert System.objects.get(pk=target.pk).path == new_path
    signoff.refresh_from_db()
    assert signoff.voided_at is not None and "edited by root" in signoff.voided_reason
    event = AuditEvent.objects.filter(object_id=str(target.uuid)).latest("pk")
    assert (event.before["path"], event.after["path"]) == (old_path, new_path)
    assert event.before["environment"] != event.after["environment"]


def test_the_plan_form_retargeting_voids_the_signoff(client_for, analyst, approver):
    """REVIEW9 J3-1, same pattern elsewhere: the plan edit page re-points the plan's target;
    the service compares with the stored plan, so the sign-off of the old target is void."""
    from django.urls import reverse

    from mappings.models import Plan, PlanVersion
    from tests.factories import SystemFactory

    plan = PlanFactory(status="signed_off")
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    signoff = SignOff.objects.create(
        plan=plan, version=version, approver=approver, decision="approved"
    )
    elsewhere = SystemFactory(role="target")
    fields = ("name", "description", "strategy", "batch_size", "parallelism")
    data = {k: getattr(plan, k) for k in fields} | {
        "source": plan.source_id,
        "target": elsewhere.pk,
        "failure_threshold_pct": plan.failure_threshold_pct,
    }
    page = client_for(analyst).post(reverse("mappings:plan_edit", args=[plan.slug]), data)
    assert page.status_code == 302, page.content.decode()[:3000]
    stored = Plan.objects.get(pk=plan.pk)
    assert (stored.target_id, stored.status) == (elsewhere.pk, "draft")
    signoff.refresh_from_db()
    assert signoff.voided_at is not None
