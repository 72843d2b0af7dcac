"""The system secret is ciphertext at rest and never rendered back."""

from __future__ import annotations

import logging

import pytest
from django.db import connection

from mappings.models import System
from migration_planner.lib import crypto
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db
SECRET = "s3cret-Pa55-never-shown"


@pytest.fixture
def pg_system():
    system = SystemFactory(
        kind="postgresql", host="db.internal", database="crm", path="", username="etl"
    )
    system.set_secret(SECRET)
    system.save()
    return system


def test_secret_is_ciphertext_in_the_database(pg_system):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_ciphertext FROM mappings_system WHERE id = %s", [pg_system.pk]
        )
        stored = cursor.fetchone()[0]
    assert SECRET not in stored
    assert crypto.decrypt(stored) == SECRET
    assert pg_system.connection_params()["password"] == SECRET


def test_secret_decrypts_after_key_rotation(pg_system, settings):
    old_key = settings.FERNET_KEY_FILE.read_bytes().decode().strip()
    from cryptography.fernet import Fernet

    settings.FERNET_KEYS = [Fernet.generate_key().decode(), old_key]
    crypto.reset_key_cache()
    try:
        assert System.objects.get(pk=pg_system.pk).connection_params()["password"] == SECRET
    finally:
        crypto.reset_key_cache()


def test_secret_not_in_pages(client_for, admin_user, pg_system):
    client = client_for(admin_user)
    pages = [
        "/systems/",
        pg_system.get_absolute_url(),
        f"/admin/mappings/system/{pg_system.pk}/change/",
        "/admin/mappings/system/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert SECRET not in body, url
        assert pg_system.secret_ciphertext not in body, url


def test_secret_not_in_api(client_for, admin_user, pg_system):
    client = client_for(admin_user)
    detail = client.get(f"/api/systems/{pg_system.uuid}/").json()
    assert "secret" not in detail and "secret_ciphertext" not in detail
    assert detail["has_secret"] is True
    listing = client.get("/api/systems/").content.decode()
    assert SECRET not in listing and pg_system.secret_ciphertext not in listing


def test_secret_write_only_through_api(client_for, analyst):
    client = client_for(analyst)
    response = client.post(
        "/api/systems/",
        {
            "name": "warehouse",
            "kind": "postgresql",
            "host": "wh",
            "database": "dw",
            "username": "u",
            "secret": "api-secret-123",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert "api-secret-123" not in response.content.decode()
    system = System.objects.get(name="warehouse")
    assert system.connection_params()["password"] == "api-secret-123"


def test_the_django_admin_cannot_change_systems_or_plans(client_for, admin_user, pg_system):
    """The Django admin wrote systems (environment, connection, secret) and plans around the
    audited services, so no audit row and no sign-off voided: it only views them now; the
    system page (system_save) is where they change."""
    client = client_for(admin_user)
    url = f"/admin/mappings/system/{pg_system.pk}/change/"
    data = {
        "name": pg_system.name,
        "kind": "postgresql",
        "environment": "dev",
        "role": "both",
        "host": "db.internal",
        "database": "crm",
        "username": "etl",
        "options": "{}",
        "secret": "rotated-1",
    }
    assert client.get(url).status_code == 200  # viewable
    assert client.post(url, data).status_code == 403
    assert System.objects.get(pk=pg_system.pk).connection_params()["password"] == SECRET
    for model in ("system", "plan", "entitymapping", "fieldmapping", "rulestep", "lookuptable"):
        assert client.get(f"/admin/mappings/{model}/").status_code == 200, model
        assert client.get(f"/admin/mappings/{model}/add/").status_code == 403, model


def test_secret_not_in_repr_or_logs(pg_system, caplog):
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("system %r %s", pg_system, pg_system)
    assert SECRET not in caplog.text and pg_system.secret_ciphertext not in caplog.text
