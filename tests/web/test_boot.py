"""The app boots (migrate, then serve the login page and health) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import pg
from tests.support.app_process import app_env, migrate, run_python

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
django.setup()
from django.test import Client
c = Client()
login = c.get("/accounts/login/")
health = c.get("/healthz")
print(json.dumps({"login": login.status_code, "form": b'name="password"' in login.content,
                  "health": health.json()}))
"""


def _boot(database_url: str, tmp_path: Path) -> dict:
    env = app_env(tmp_path, database_url)
    migrate(env)
    done = run_python(env, "-c", PROBE)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    return json.loads(out.strip().splitlines()[-1])


def _assert_up(result: dict, vendor: str) -> None:
    assert result["login"] == 200 and result["form"] is True
    assert result["health"]["database"] == {
        **result["health"]["database"],
        "ok": True,
        "vendor": vendor,
    }
    assert result["health"]["broker"]["ok"] is True


def test_app_boots_on_sqlite(tmp_path):
    _assert_up(_boot(f"sqlite:///{tmp_path / 'app.sqlite3'}", tmp_path), "sqlite")


@pytest.mark.postgres
def test_app_boots_on_postgresql(tmp_path):
    with pg.throwaway_database("boot") as name:
        _assert_up(
            _boot(pg.url_for(name).replace("postgresql://", "postgres://"), tmp_path), "postgresql"
        )
