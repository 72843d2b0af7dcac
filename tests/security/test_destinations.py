"""Issue 17.1: SQLite/file systems stay inside MP_SYSTEMS_DIR; no system targets our own data."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from django.conf import settings as dj_settings

from mappings.models import System
from runs.engine.connectors import connect
from runs.engine.guard import DestinationRefused, file_path_check
from tests.factories import SystemFactory
from tests.support.app_process import app_env, migrate, run_python

ROOT = Path(__file__).resolve().parents[2]


def _sqlite_with_users(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE auth_user (id INTEGER PRIMARY KEY, password TEXT)")
    conn.execute("INSERT INTO auth_user VALUES (1, 'pbkdf2_sha256$secret-hash')")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def roots(tmp_path, settings):
    inside = tmp_path / "systems"
    inside.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    settings.MP_SYSTEMS_DIR = inside
    return inside, outside


def test_engine_refuses_paths_outside_the_root_and_through_symlinks(roots):
    inside, outside = roots
    secret = _sqlite_with_users(outside / "app.sqlite3")
    (inside / "link.sqlite3").symlink_to(secret)
    (inside / "dir").symlink_to(outside)
    for path in (
        str(secret),
        str(inside / "link.sqlite3"),
        str(inside / "dir" / "app.sqlite3"),
        str(inside / ".." / "elsewhere" / "app.sqlite3"),
    ):
        with pytest.raises(DestinationRefused, match="outside the data directory"):
            connect("sqlite", {"path": path, "allowed_root": str(inside)})
    with pytest.raises(DestinationRefused, match="allowed data directory"):
        connect("sqlite", {"path": str(secret)})
    ok = connect("file", {"path": str(inside / "ok.sqlite3"), "allowed_root": str(inside)})
    assert ok.introspect().tables == {}
    ok.close()


def test_engine_refuses_the_apps_own_files_and_their_side_files(roots):
    inside, _ = roots
    app_db = _sqlite_with_users(inside / "app.sqlite3")
    for path in (app_db, inside / "app.sqlite3-wal", inside / "app.sqlite3-journal"):
        with pytest.raises(DestinationRefused, match="application's own data"):
            file_path_check(str(path), allowed_root=str(inside), refused=[str(app_db)])


@pytest.mark.django_db
def test_analyst_api_cannot_register_or_repoint_a_system_outside_the_root(
    client_for, analyst, roots
):
    inside, outside = roots
    secret = _sqlite_with_users(outside / "app.sqlite3")
    client = client_for(analyst)
    created = client.post(
        "/api/systems/",
        {"name": "x", "kind": "sqlite", "path": str(secret)},
        content_type="application/json",
    )
    assert created.status_code == 400, created.content
    assert "outside the data directory" in created.json()["detail"]
    good = client.post(
        "/api/systems/",
        {"name": "ok", "kind": "sqlite", "path": str(inside / "ok.sqlite3")},
        content_type="application/json",
    )
    assert good.status_code == 201, good.content
    repoint = client.patch(
        f"/api/systems/{good.json()['uuid']}/",
        {"path": str(secret)},
        content_type="application/json",
    )
    assert repoint.status_code == 400
    assert System.objects.get(name="ok").path == str(inside / "ok.sqlite3")


@pytest.mark.django_db
def test_a_stored_bad_path_is_refused_when_read(client_for, analyst, roots):
    """A row that predates the check (or was written around the service) still reads nothing."""
    _, outside = roots
    secret = _sqlite_with_users(outside / "app.sqlite3")
    system = SystemFactory(path=str(secret))
    client = client_for(analyst)
    schema = client.get(f"/api/systems/{system.uuid}/schema/")
    assert schema.status_code == 400
    assert "auth_user" not in schema.content.decode()
    page = client.get(f"/systems/{system.uuid}/schema/")
    assert "outside the data directory" in page.content.decode()
    assert "auth_user" not in page.content.decode()
    # the options JSON cannot override the checked path either
    system.path, system.options = str(outside / "x.sqlite3"), {"path": str(secret)}
    system.save()
    assert "auth_user" not in client.get(f"/api/systems/{system.uuid}/schema/").content.decode()


@pytest.mark.django_db
def test_no_system_may_target_the_apps_own_postgresql_database(client_for, analyst):
    db = dj_settings.DATABASES["default"]
    client = client_for(analyst)
    for host in (db["HOST"], "localhost"):
        response = client.post(
            "/api/systems/",
            {
                "name": f"own-{host}",
                "kind": "postgresql",
                "host": host,
                "port": int(db["PORT"]),
                "database": db["NAME"],
                "username": db["USER"],
            },
            content_type="application/json",
        )
        assert response.status_code == 400, response.content
        assert "application's own" in response.json()["detail"]
    other = client.post(
        "/api/systems/",
        {
            "name": "other",
            "kind": "postgresql",
            "host": db["HOST"],
            "port": int(db["PORT"]),
            "database": "postgres",
            "username": db["USER"],
        },
        content_type="application/json",
    )
    assert other.status_code == 201


PROBE = """
import json, django
django.setup()
from django.contrib.auth.models import Group, User
from django.test import Client
from mappings.models import System
from django.conf import settings
from migration_planner.lib import crypto
crypto.encrypt("x")  # creates the development key file
user = User.objects.create_user("ana", password="x-Long-pass-2026")
user.groups.add(Group.objects.get(name="analyst"))
c = Client()
c.force_login(user)
app_db = str(settings.DATABASES["default"]["NAME"])
made = c.post("/api/systems/", {"name": "loot", "kind": "sqlite", "path": app_db},
              content_type="application/json")
sneaky = System.objects.create(name="sneaky", kind="sqlite", path=app_db)
schema = c.get(f"/api/systems/{sneaky.uuid}/schema/")
page = c.get(f"/systems/{sneaky.uuid}/schema/").content.decode()
print(json.dumps({"create": made.status_code, "detail": made.json().get("detail"),
                  "schema": schema.status_code,
                  "leak": "django_session" in schema.content.decode() + page
                          or "auth_user" in schema.content.decode() + page}))
"""


def test_analyst_cannot_read_the_apps_own_sqlite_database(tmp_path):
    """The audit's reproduction: a SQLite app database at MP_DATA_DIR/app.sqlite3, inside the
    systems directory (the default), registered as a system by an analyst."""
    env = app_env(tmp_path)
    migrate(env)
    done = run_python(env, "-c", PROBE)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["create"] == 400 and "application's own" in result["detail"]
    assert result["schema"] == 400
    assert result["leak"] is False
    # 17.9: what the app creates under its data directory is readable by its user only
    for name in ("app.sqlite3", "fernet.key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
